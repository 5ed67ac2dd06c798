"""Secrets, personal data and prompt-injection signals in text, in linear time.

Every pattern is RE2 (google-re2): no backtracking, so hostile text cannot blow up the
scan. Checks that need arithmetic (Luhn, IBAN mod-97, SSN ranges, entropy) run in Python
on the candidates RE2 found. Text is scanned up to a cap; findings past it are not seen.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import unicodedata
from collections import Counter
from dataclasses import dataclass

import re2

# ---------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """A kind of sensitive data at [start, end) of the scanned text."""

    kind: str
    start: int
    end: int


def _compile(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.max_mem = 64 << 20
    return re2.compile(pattern, options)


# ---------------------------------------------------------------------------- secrets

_SECRET_PATTERNS: list[tuple[str, re2._Regexp]] = [
    ("private_key", _compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("aws_access_key", _compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    (
        "aws_secret_key",
        _compile(
            r"(?i)aws_?(?:secret_?(?:access_?)?key|sk)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})\b"
        ),
    ),
    ("gcp_api_key", _compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("github_token", _compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})")),
    ("gitlab_token", _compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    (
        "slack_webhook",
        _compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
    ),
    ("slack_token", _compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("stripe_key", _compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("anthropic_key", _compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai_key", _compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}")),
    ("jwt", _compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
]

_NAME = (
    r"(?i)(?:^|[^A-Za-z0-9])[a-z0-9_.-]*(?:password|passwd|pwd|pass|secret|api[_-]?key|"
    r"access[_-]?key|account[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|"
    r"client[_-]?secret|private[_-]?key|credentials?)(?:[_.-]?key)?"
)
# name = value, name := value, name => value, name: value (YAML, with a space), "name": "v"
_SEPARATOR = r"(?:[ \t]*(?::=|=>|=)[ \t]*|[ \t]*:[ \t]+|[\"'][ \t]*:[ \t]*)"  # one line
_ASSIGNMENT = _compile(
    _NAME
    + r"[\"']?"
    + _SEPARATOR
    + r"(?:\"([^\"\n]{8,200})\"|'([^'\n]{8,200})'|`([^`\n]{8,200})`"
    + r"|([^\s\"'`,;&<>(){}\[\]]{8,}))"
)
_URL_CREDENTIAL = _compile(r"\b[a-z][a-z0-9+.\-]*://[^/\s:@]{1,64}:([^@\s/]{6,200})@[^\s@]")
_CODE_REFERENCE = _compile(r"^[A-Za-z_]+(?:\.[A-Za-z_]+)+$")  # config.db.password
_PLACEHOLDER = _compile(
    r"(?i)^(?:\$|%|\{|<|\[|\*|!!|@[a-z0-9_./-]+$|x{4,}|\.\.\.|null|none|nil|true|false|undefined|changeme|change_me|"
    r"password|secret|example|your|my[_-]?|test|dummy|sample|placeholder|redacted|todo|env\b|"
    r"os\.|process\.env|getenv|config\.|settings\.|self\.|args\.|request\.|params\.|input)"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


_PLACEHOLDER_WORD = _compile(
    r"(?i)your[_-]|[_-]here\b|change[_-]?me|placeholder|redacted|"
    r"example|dummy|replace[_-]?me|insert[_-]"
)


def _looks_secret(value: str) -> bool:
    """A value that is plausibly a real credential rather than a name or placeholder."""
    if _PLACEHOLDER.search(value) or _PLACEHOLDER_WORD.search(value):
        return False
    if len(set(value)) < 6 or _CODE_REFERENCE.match(value):
        return False
    if value.startswith("eyJ") and "." not in value:
        return False  # base64 of a JSON object: a page cursor or state, not a credential
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    return classes >= 2 and _entropy(value) >= 3.0


def _any_of(patterns: list[re2._Regexp]) -> re2._Regexp:
    """One pattern matching wherever any of `patterns` would: a single scan rejects clean
    text, the common case, before the per-kind scans run."""
    return _compile("|".join(f"(?:{p.pattern})" for p in patterns))


def secret_findings(text: str) -> list[Finding]:
    """Every secret found, by kind and span."""
    if not _ANY_SECRET.search(text):
        return []
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _SECRET_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "openai_key" and text.startswith("sk-ant-", start):
                continue
            if any(s <= start < e for s, e in taken):
                continue
            taken.append((start, end))
            if _placeholder_shaped(match.group(0)):
                continue  # ghp_xxxx..., sk-xxxx...: the shape of a key without one
            found.append(Finding(kind, start, end))
    for match in _ASSIGNMENT.finditer(text):
        group = next(g for g in range(1, 5) if match.group(g) is not None)
        start, end = match.span(group)
        if any(s <= start < e or start <= s < end for s, e in taken):
            continue
        if _looks_secret(match.group(group)):
            found.append(Finding("generic_secret", start, end))
            taken.append((start, end))
    for match in _URL_CREDENTIAL.finditer(text):
        start, end = match.span(1)
        if any(s <= start < e or start <= s < end for s, e in taken):
            continue
        if _looks_secret(match.group(1)):
            found.append(Finding("generic_secret", start, end))
    return found


_ANY_SECRET = _any_of([p for _, p in _SECRET_PATTERNS] + [_ASSIGNMENT, _URL_CREDENTIAL])


def _placeholder_shaped(token: str) -> bool:
    """A key-shaped token whose variable part is a run of one or two characters."""
    tail = token[-16:]
    return len(set(tail.lower())) <= 2


# ---------------------------------------------------------------------------- personal data

_EMAIL = _compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b")
_PHONE = _compile(
    r"(?:\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,5}){1,4})"
    r"|(?:\(\d{3}\)\s?\d{3}[\s.\-]\d{4})"
    r"|(?:\b\d{3}[.\-]\d{3}[.\-]\d{4}\b)"
    r"|(?:\b0\d{2,4}[\s/]\d{3,8}(?:[\s\-]\d{2,5})?\b)"
    r"|(?:\b0\d{1,3}-\d{3,4}-\d{4}\b)"
)
_CARD = _compile(r"\b\d(?:[ \-]?\d){12,18}\b")
_SSN = _compile(r"\b(\d{3})-(\d{2})-(\d{4})\b")
_IBAN = _compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = _compile(r"(?:^|[^\w.])((?:\d{1,3}\.){3}\d{1,3})(?:$|[^\w.]|\.(?:\s|$))")
_IPV6 = _compile(r"(?i)(?:^|[^\w:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(?:$|[^\w:])")

IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AT": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "CH": 21,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FR": 27,
    "GB": 22,
    "GI": 23,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IS": 26,
    "IT": 27,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MT": 31,
    "NL": 18,
    "NO": 15,
    "PL": 28,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "SA": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "TR": 26,
    "UA": 29,
}


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_prefix(digits: str) -> bool:
    return digits[0] in "3456" or digits[:2] in ("22", "23", "24", "25", "26", "27")


def iban_ok(candidate: str) -> bool:
    """ISO 13616: the country's length and the mod-97 check."""
    iban = candidate.replace(" ", "")
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """US SSN ranges: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _phone_ok(candidate: str) -> bool:
    digits = [c for c in candidate if c.isdigit()]
    return 7 <= len(digits) <= 15 and len(set(digits)) > 2


def pii_findings(text: str) -> list[Finding]:
    """Every piece of personal data found, by kind and span."""
    if not _ANY_PII.search(text):
        return []
    found: list[Finding] = []
    for match in _EMAIL.finditer(text):
        found.append(Finding("email", *match.span()))
    for match in _CARD.finditer(text):
        digits = "".join(c for c in match.group(0) if c.isdigit())
        if 13 <= len(digits) <= 19 and _card_prefix(digits) and luhn_ok(digits):
            found.append(Finding("payment_card", *match.span()))
    for match in _SSN.finditer(text):
        if ssn_ok(match.group(1), match.group(2), match.group(3)):
            found.append(Finding("us_ssn", *match.span()))
    for match in _IBAN.finditer(text):
        if iban_ok(match.group(0)):
            found.append(Finding("iban", *match.span()))
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group(1))
        except ValueError:
            continue
        found.append(Finding("ip_address", *match.span(1)))
    for match in _IPV6.finditer(text):
        candidate = match.group(1)
        if candidate.count(":") < 2 or not any(c.isalnum() for c in candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        found.append(Finding("ip_address", *match.span(1)))
    taken = [(f.start, f.end) for f in found]
    taken += [m.span() for m in _IBAN.finditer(text)]  # an IBAN with a bad checksum too
    for match in _PHONE.finditer(text):
        start, end = match.span()
        if any(s < end and start < e for s, e in taken) or not _phone_ok(match.group(0)):
            continue
        if text[start - 1 : start] == "-" or text[end : end + 1] == "-":
            continue  # one group of a longer dashed number (a card, a part number)
        found.append(Finding("phone", start, end))
    return found


# ---------------------------------------------------------------------------- injection

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e", "\u00ad"}
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_TAGS = range(0xE0000, 0xE0080)

_SIGNALS: list[tuple[str, re2._Regexp]] = [
    (
        "instruction_override",
        _compile(
            r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect|discard)\s+"
            r"(?:all\s+|any\s+|every\s+|the\s+|your\s+|of\s+|my\s+|these\s+|those\s+|previous\s+)*"
            r"(?:previous|prior|above|earlier|preceding|former|initial|original|system|existing|"
            r"developer|safety|old|current|given|scoring)?\s*"
            r"(?:instructions?|rules|prompts?|directives?|directions|guidelines|guardrails|"
            r"constraints|restrictions|programming|policies|commands|context|criteria)"
            r"|(?:ignore|disregard|forget)\s+(?:everything\s+|all\s+|anything\s+)?(?:the\s+)?"
            r"(?:above\b|before\s+this|you\s+were\s+told|you(?:'ve|\s+have)\s+been\s+told)"
            r"|ignore\s+(?:the|your)\s+(?:\w+\s+)?task\s+and\s+instead"
            r"|instructions\s+(?:above|before)\s+(?:are|were)\s+(?:void|cancel+ed|outdated|obsolete|"
            r"wrong|fake|only\s+a\s+test|invalid)"
            r"|(?:ignore|disregard|skip|forget)\s+(?:whatever|what)\s+(?:your|the)\s+"
            r"(?:operator|developer|system|admin|creator)s?\s+(?:said|told|wrote)"
            r"|never\s*mind\s+(?:the|your)\s+(?:system|previous|above|earlier|original)"
            r"|do\s+not\s+follow\s+(?:any\s+of\s+)?(?:the|your)\s+(?:\w+\s+){0,2}"
            r"(?:rules|instructions|guidelines)"
            r"|(?:previous|prior|earlier|above|system|original)\s+(?:system\s+)?(?:instructions|"
            r"message|directions|rules|prompt)\s+(?:are|is|were|was|have\s+been)\s+(?:now\s+)?"
            r"(?:void|cancel+ed|revoked|obsolete|outdated|wrong|fake|only\s+a\s+test|invalid|"
            r"from\s+an\s+attacker|no\s+longer\s+valid)"
            r"|(?:new|updated|real)\s+instructions?\s*(?::|follow)"
            r"|(?:ignoriere|vergiss)\w*\s+(?:\w+\s+){0,3}(?:anweisungen|regeln|instruktionen)"
            r"|(?:ignora|olvida)\w*\s+(?:\w+\s+){0,3}(?:instrucciones|reglas|istruzioni|regole)"
            r"|(?:ignore[zr]|oublie[zr]?)\s+(?:\w+\s+){0,3}(?:instructions|consignes|règles)"
            r"|(?:desconsidere|esqueça|ignore)\s+(?:\w+\s+){0,3}(?:instruções|regras)"
            r"|negeer\s+(?:\w+\s+){0,3}(?:instructies|regels)"
            r"|zignoruj\s+(?:\w+\s+){0,3}(?:instrukcje|polecenia|zasady)"
            r"|игнорируй\w*\s+(?:\w+\s+){0,3}(?:инструкции|указания|правила)"
            r"|تجاهل\s+(?:\S+\s+){0,3}(?:التعليمات|الأوامر|التوجيهات)"
            r"|忽略(?:之前|以上|上面|所有|先前)"
            r"|(?:以前|前)の(?:指示|命令).{0,8}無視"
            r"|이전의?\s*(?:모든\s*)?(?:지시|명령).{0,8}무시"
        ),
    ),
    (
        "role_hijack",
        _compile(
            r"you(?:\s+are|'re)\s+(?:now\s+)?(?:in\s+)?(?:dan|stan|aim|evilbot|an?\s+(?:unrestricted|"
            r"unfiltered|uncensored|jailbroken|evil|rogue)|developer\s+mode|no\s+longer\s+(?:an?\s+)?"
            r"(?:ai|assistant|bound|restricted))\b"
            r"|you(?:\s+are|'re)\s+now\s+(?:the\s+)?(?:system|root|admin\w*|developer|operator)"
            r"|you(?:\s+are|'re)\s+now\s+my\s+\w+\s+who"
            r"|(?:act|behave|respond|operate|answer|reply)\s+(?:only\s+)?as\s+(?:if\s+you\s+(?:are|were)"
            r"\s+)?(?:the\s+|an?\s+|your\s+)?(?:system|root|admin\w*|developer|unrestricted|unfiltered|"
            r"uncensored|jailbroken|dan\b|evil|different\s+ai|ai\s+(?:that|which|without|with\s+no)|"
            r"alter\s+ego)"
            r"|(?:enter|entering|activate|switch\s+to|you\s+are\s+in|you're\s+in|now\s+in)\s+"
            r"(?:dan|developer|god|jailbreak|unrestricted|sudo)\s+mode"
            r"|(?:developer|dan|god|jailbreak|unrestricted)\s+mode\s+(?:enabled|activated)\b"
            r"|(?:now\s+)?operating\s+as\s+(?:root|admin\w*|the\s+system|system)"
            r"|switch\s+persona"
            r"|pretend\s+(?:that\s+)?you\s+(?:have|are|had)\s+(?:no|without)\s+"
            r"|(?:from\s+now\s+on|henceforth|for\s+the\s+rest\s+of\s+this\s+conversation),?\s+you\s+"
            r"(?:are|will|must|shall|have)"
            r"|do\s+anything\s+now"
            r"|no\s+longer\s+(?:bound|restricted|limited)\s+by"
            r"|you\s+have\s+been\s+(?:freed|unlocked|jailbroken|liberated)"
            r"|(?:been\s+)?freed\s+from\s+(?:all\s+)?(?:of\s+)?(?:its|your)\s+(?:restrictions|rules)"
            r"|ignores?\s+(?:all\s+)?(?:ethics|its\s+guidelines|safety|content\s+polic)"
            r"|never\s+(?:refuses|says\s+no|says\s+'?i\s+can'?t|refused\s+anything)"
            r"|comply\s+with\s+(?:every|all|any)\s+requests?\s+without"
            r"|(?:ab\s+jetzt|von\s+nun\s+an)\s+bist\s+du"
            r"|(?:a\s+partir\s+de\s+ahora|desde\s+ahora)\s+eres"
            r"|(?:à\s+partir\s+de\s+maintenant|désormais),?\s+tu\s+es"
            r"|теперь\s+ты"
            r"|(?:从现在开始|从现在起)[,，]?\s*你是"
            r"|你现在是"
            r"|开发者模式"
        ),
    ),
    (
        "prompt_exfiltration",
        _compile(
            r"(?:repeat|print|reveal|show|output|display|tell|leak|dump|give|share|disclose|recite|"
            r"write\s+out|spell\s+out|copy|paste|return|quote|append|include|list|start\s+your\s+"
            r"answer\s+with)\s+(?:me\s+|us\s+)?(?:back\s+)?(?:all\s+|every\s+|the\s+|of\s+|"
            r"everything\s+|full\s+|contents\s+of\s+|content\s+of\s+|text\s+of\s+)*"
            r"(?:your\s+(?:(?:exact|entire|full|complete|hidden|secret|initial|original|internal|"
            r"confidential|first|previous|earlier)\s+)*"
            r"(?:system\s+(?:prompt|message|instructions?)|instructions|prompt|developer\s+message|"
            r"rules|configuration|context\s+window|guidelines)"
            r"|the\s+(?:(?:exact|entire|full|complete|hidden|secret|initial|original|internal|"
            r"confidential)\s+)*(?:system\s+(?:prompt|message|instructions?)|developer\s+message)"
            r"|(?:the\s+)?(?:hidden|secret|initial|original|confidential)\s+(?:rules|instructions|"
            r"prompt)"
            r"|(?:text|words|lines|everything)\s+(?:above|before)\s+this)"
            r"|what\s+(?:were|are)\s+you\s+(?:told|instructed|programmed)"
            r"|what\s+(?:were|are)\s+your\s+(?:instructions|rules|system\s+prompt)"
            r"|(?:output|print|repeat|show|quote|copy)\s+(?:the\s+)?(?:instructions|text|prompt|"
            r"words|lines|everything|content)\s+above"
            r"|(?:first|last)\s+(?:line|sentence|words?)\s+of\s+your\s+(?:instructions|prompt|"
            r"system)"
            r"|(?:system|initial)\s+(?:prompt|message|instructions)\s+(?:verbatim|word\s+for\s+word)"
            r"|(?:rules|instructions|tool\s+descriptions?)\s+you(?:'re|\s+are|\s+were)\s+"
            r"(?:following|given)"
            r"|(?:zeige|wiederhole|gib)\s+(?:\w+\s+){0,3}(?:systemprompt|system-prompt|anweisungen)"
            r"|(?:muestra|repite|revela)\s+(?:\w+\s+){0,3}(?:prompt|instrucciones)\s+(?:del\s+)?"
            r"sistema"
            r"|システムプロンプト"
            r"|系统提示"
        ),
    ),
    (
        "tool_coercion",
        _compile(
            r"(?:call|invoke|run|execute|trigger|fire|issue)\s+(?:the\s+|a\s+|your\s+)?"
            r"`?[a-z][a-z0-9]*_[a-z0-9_]+`?\s*(?:\(|tool|function|action|endpoint|with|to\b|on\b|"
            r"now|and\b)"
            r"|(?:call|use|invoke|run)\s+(?:the\s+|your\s+)?[\w-]+\s+(?:tool|function|plugin|"
            r"integration)\s+to\s+(?:delete|cancel|remove|send|forward|post|transfer|add|create|"
            r"grant|share|wire|email|upload|download|run|execute|make|change|disable)"
            r"|(?:execute|run)\s+(?:this|the\s+following|these|that)\s+(?:shell\s+|bash\s+|terminal\s+|"
            r"system\s+|sql\s+)?(?:command|script|code|query|statement)"
            r"|(?:run|execute)\s+`?(?:cat|curl|wget|rm|chmod|bash|sh|nc|python|powershell)\s"
            r"|(?:cat|read|send|upload|copy|print|exfiltrate|post|include|attach)\S*\s+[^\n]{0,40}"
            r"(?:/etc/passwd|/etc/shadow|~/\.ssh|id_rsa|\.aws/credentials)"
            r"|\brm\s+-rf\s+/|curl\s+[^|\n]{1,200}\|\s*(?:ba)?sh\b|wget\s+[^|\n]{1,200}\|\s*(?:ba)?sh\b"
            r"|\b(?:drop|truncate)\s+table\b|\bdelete\s+from\s+\w+"
            r"|(?:send|forward|email|upload|exfiltrate|post|leak|paste)\b[^.\n]{0,80}?\bto\s+"
            r"(?:\S+@\S+\.\w+|https?://)"
            r"|(?:wire|transfer|send)\s+(?:the\s+|all\s+)?(?:money|funds|payment|bitcoin|crypto)"
            r"|(?:delete|drop|wipe|erase|transfer|grant|cancel)\w*\s+(?:all\s+|every\s+)?(?:the\s+)?"
            r"(?:\w+\s+){0,2}(?:users|accounts|database|tables|records|funds|money|meetings|files|"
            r"repositories|admin\s+(?:rights|access|role))\b"
            r"|add\s+\S+\s+as\s+(?:an?\s+)?(?:admin|owner|collaborator)"
        ),
    ),
    (
        "delimiter_spoofing",
        _compile(
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
            r"end_header_id|begin_of_text|end_of_turn|start_of_turn)\|>"
            r"|\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>"
            r"|(?:^|\n)[ \t]*#{2,}[ \t]*(?:system|instruction|instructions|new\s+instructions)"
            r"[ \t]*:?[ \t]*(?:\n|$)"
            r"|(?:^|\n)[ \t]*\[(?:system|assistant|admin|developer)\][ \t]*:?"
            r"|```[ \t]*(?:system|sys)\b"
        ),
    ),
]

# A fake conversation turn: role markers for two different roles at line starts.
_TURN = _compile(r"(?:^|\n)[ \t]*(human|assistant|system|user|ai)[ \t]*:[ \t]*\S")

# Look-alike letters (Cyrillic, Greek) and digits used as letters, folded to Latin for a
# second reading of the text; the first reading keeps them, for non-Latin phrases.
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "һ": "h",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "ӏ": "l",
        "ο": "o",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
    }
)

_BASE64_RUN = _compile(r"[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_\-]{24,}={0,2}")
_HEX_RUN = _compile(r"(?:0x)?(?:[0-9a-fA-F]{2}[\s:]?){12,}")


_STRIP = {ord(c): None for c in (*_ZERO_WIDTH, *_BIDI)} | {code: None for code in _TAGS}
_SUSPECT = _compile(
    "[\u00ad\u180e\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
)


def normalise(text: str) -> str:
    """NFKC, zero-width, bidi and tag characters removed, lower-case, runs of spaces folded
    (line breaks kept, for patterns anchored at the start of a line)."""
    if not text.isascii():  # ASCII is NFKC already and holds none of the stripped characters
        text = unicodedata.normalize("NFKC", text.translate(_STRIP))
    folded = text.lower()
    return "\n".join(" ".join(line.split()) for line in folded.splitlines() if line.strip())


def _despaced(text: str) -> str:
    """'i g n o r e   a l l' -> 'ignore all': letters spaced one apart, words three apart."""
    out = []
    for line in text.splitlines():
        words = []
        for chunk in line.split("   ") if "   " in line else [line]:
            tokens = chunk.split(" ")
            single = len(tokens) >= 2 and all(len(t) <= 1 for t in tokens)
            words.append("".join(tokens) if single else chunk)
        out.append(" ".join(words))
    return "\n".join(out)


# Characters the second reading folds: digits and symbols used as letters, non-ASCII
# look-alikes, and the wide gaps of spaced-out letters.
_FOLDABLE = _compile(r"[0-9@$]|[^\x00-\x7f]|   ")


def readings(text: str) -> list[str]:
    """The normalised text, and a second reading with look-alikes, leetspeak and spaced-out
    letters folded, when that differs."""
    first = normalise(text)
    if not _FOLDABLE.search(text):
        return [first]  # nothing a second reading would change
    spaced = unicodedata.normalize("NFKC", text).lower()
    second = normalise(_despaced(spaced).translate(_CONFUSABLES))
    return [first] if second == first else [first, second]


def _is_pictograph(char: str) -> bool:
    return unicodedata.category(char) == "So" or 0x1F000 <= ord(char) <= 0x1FAFF


def _invisible(text: str) -> bool:
    """Invisible or tag characters that are not part of an emoji or script's normal use."""
    if text.isascii():
        return False  # every suspect character is outside ASCII
    for match in _SUSPECT.finditer(text):
        index = match.start()
        char = text[index]
        code = ord(char)
        if char in _BIDI:
            return True
        if code in _TAGS:
            # A run of tags is benign only as a flag sequence after U+1F3F4 (black flag);
            # the run was judged at its first character.
            before = text[index - 1] if index else ""
            if before and ord(before) in _TAGS:
                continue
            if before != "\U0001f3f4":
                return True
        elif char in ("\u200d", "\u200c"):
            before = text[index - 1] if index else ""
            after = text[index + 1] if index + 1 < len(text) else ""
            joins_emoji = (
                _is_pictograph(before) or _is_pictograph(after) or "\ufe0f" in (before, after)
            )
            latin = before.isascii() and before.isalpha() and after.isascii() and after.isalpha()
            if latin and not joins_emoji:
                return True
        elif char in ("\u200b", "\u2060", "\u180e") or (char == "\ufeff" and index > 0):
            return True
    return False


def _decoded_payloads(text: str) -> list[str]:
    """Printable text hidden as base64 or hex in the original text."""
    if not _ANY_RUN.search(text):
        return []  # one scan for the common case: neither kind of run
    found = []
    for match in _BASE64_RUN.finditer(text):
        run = match.group(0)
        try:
            raw = base64.b64decode(
                run + "=" * (-len(run) % 4),
                altchars=b"-_" if ("-" in run or "_" in run) else None,
                validate=False,
            )
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("utf-8", errors="ignore")
        if len(decoded) >= 12 and sum(c.isprintable() for c in decoded) > 0.9 * len(decoded):
            found.append(decoded)
    for match in _HEX_RUN.finditer(text):
        digits = "".join(c for c in match.group(0).removeprefix("0x") if c not in " \t\n:")
        try:
            decoded = bytes.fromhex(digits).decode("utf-8", errors="ignore")
        except ValueError:
            continue
        if len(decoded) >= 8 and sum(c.isprintable() for c in decoded) > 0.9 * len(decoded):
            found.append(decoded)
    return found


_ANY_RUN = _any_of([_BASE64_RUN, _HEX_RUN])
_ANY_PII = _any_of([_EMAIL, _PHONE, _CARD, _SSN, _IBAN, _IPV4, _IPV6])
_ANY_SIGNAL = _any_of([p for _, p in _SIGNALS] + [_TURN])


def _signals(text: str) -> set[str]:
    found: set[str] = set()
    for reading in readings(text):
        if not _ANY_SIGNAL.search(reading):
            continue
        found.update(name for name, pattern in _SIGNALS if pattern.search(reading))
        if len({m.group(1) for m in _TURN.finditer(reading)}) >= 2:
            found.add("delimiter_spoofing")
    return found


def injection_signals(text: str) -> list[str]:
    """Prompt-injection signals in text, judged after normalisation."""
    signals = _signals(text)
    if _invisible(text):
        signals.add("invisible_characters")
    for payload in _decoded_payloads(text):
        if _signals(payload):
            signals.add("encoded_payload")
            break
    return sorted(signals)


# ---------------------------------------------------------------------------- the CEL face


def kinds(findings: list[Finding]) -> list[str]:
    """Sorted distinct kinds."""
    return sorted({f.kind for f in findings})


def redact(text: str) -> str:
    """The text with every secret and piece of personal data replaced by [KIND]."""
    spans = sorted(secret_findings(text) + pii_findings(text), key=lambda f: (f.start, -f.end))
    out, position = [], 0
    for finding in spans:
        if finding.start < position:
            continue
        out.append(text[position : finding.start])
        out.append(f"[{finding.kind.upper()}]")
        position = finding.end
    out.append(text[position:])
    return "".join(out)
