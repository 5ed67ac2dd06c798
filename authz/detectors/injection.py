"""Prompt-injection signals in text, judged on normalised readings of it (look-alikes,
leetspeak, spaced-out letters folded; base64 and hex payloads decoded)."""

from __future__ import annotations

import base64
import binascii
import unicodedata

from authz.detectors.scan import Regexp, any_of, compile_re

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e", "\u00ad"}
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_TAGS = range(0xE0000, 0xE0080)

_SIGNALS: list[tuple[str, Regexp]] = [
    (
        "instruction_override",
        compile_re(
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
        compile_re(
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
        compile_re(
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
        compile_re(
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
        compile_re(
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
_TURN = compile_re(r"(?:^|\n)[ \t]*(human|assistant|system|user|ai)[ \t]*:[ \t]*\S")

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

_BASE64_RUN = compile_re(r"[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_\-]{24,}={0,2}")
_HEX_RUN = compile_re(r"(?:0x)?(?:[0-9a-fA-F]{2}[\s:]?){12,}")


_STRIP = {ord(c): None for c in (*_ZERO_WIDTH, *_BIDI)} | {code: None for code in _TAGS}
_SUSPECT = compile_re(
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
_FOLDABLE = compile_re(r"[0-9@$]|[^\x00-\x7f]|   ")


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


_ANY_RUN = any_of([_BASE64_RUN, _HEX_RUN])
_ANY_SIGNAL = any_of([p for _, p in _SIGNALS] + [_TURN])


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
