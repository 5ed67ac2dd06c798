"""Personal data in text: email, phone, payment card (Luhn), US SSN, IBAN (mod-97), IP address."""

from __future__ import annotations

import ipaddress

from authz.detectors.scan import Budget, Finding, Spans, any_of, compile_re

_EMAIL = compile_re(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b")
_PHONE = compile_re(
    r"(?:\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,5}){1,4})"
    r"|(?:\(\d{3}\)\s?\d{3}[\s.\-]\d{4})"
    r"|(?:\b\d{3}[.\-]\d{3}[.\-]\d{4}\b)"
    r"|(?:\b0\d{2,4}[\s/]\d{3,8}(?:[\s\-]\d{2,5})?\b)"
    r"|(?:\b0\d{1,3}-\d{3,4}-\d{4}\b)"
)
_CARD = compile_re(r"\b\d(?:[ \-]?\d){12,18}\b")
_SSN = compile_re(r"\b(\d{3})-(\d{2})-(\d{4})\b")
_IBAN = compile_re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = compile_re(r"(?:^|[^\w.])((?:\d{1,3}\.){3}\d{1,3})(?:$|[^\w.]|\.(?:\s|$))")
_IPV6 = compile_re(r"(?i)(?:^|[^\w:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(?:$|[^\w:])")

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


_ANY_PII = any_of([_EMAIL, _PHONE, _CARD, _SSN, _IBAN, _IPV4, _IPV6])
ANY_PII = _ANY_PII  # the first scan, which prescan.py runs with the others


def _personal_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address that can point at a person's connection: a global unicast one. Private
    (RFC 1918, fc00::/7), shared (100.64/10), loopback, link-local, documentation, multicast,
    reserved and unspecified addresses name no one."""
    return address.is_global and not address.is_multicast


def pii_findings(
    text: str, private_ips: bool = False, first_of_kind: bool = False
) -> list[Finding]:
    """Every piece of personal data found, by kind and span. `ip_address` is a public
    address only; `private_ips` reports every address (the corpora's convention).
    `first_of_kind`: one finding of a kind is enough (what `pii()` needs); every kind but
    `phone` is still read to the end, since its spans are what a phone number may not
    overlap. Candidates past the call's Budget are reported unjudged (scan.py)."""
    if not _ANY_PII.search(text):
        return []
    found: list[Finding] = []
    taken = Spans()  # every email, card, SSN, IBAN-shaped run and address: never a phone
    budget = Budget()
    for match in budget.candidates("email", _EMAIL, text):
        start, end = match.span()
        taken.add(start, end)
        found.append(Finding("email", start, end))
    for match in budget.candidates("payment_card", _CARD, text):
        digits = "".join(c for c in match.group(0) if c.isdigit())
        if 13 <= len(digits) <= 19 and _card_prefix(digits) and luhn_ok(digits):
            found.append(Finding("payment_card", *match.span()))
            taken.add(*match.span())
    for match in budget.candidates("us_ssn", _SSN, text):
        if ssn_ok(match.group(1), match.group(2), match.group(3)):
            found.append(Finding("us_ssn", *match.span()))
            taken.add(*match.span())
    for match in budget.candidates("iban", _IBAN, text):
        taken.add(*match.span())  # an IBAN with a bad checksum too
        if iban_ok(match.group(0)):
            found.append(Finding("iban", *match.span()))
    for match in budget.candidates("ip_address", _IPV4, text):
        try:
            v4 = ipaddress.IPv4Address(match.group(1))
        except ValueError:
            continue
        taken.add(*match.span(1))
        if private_ips or _personal_ip(v4):
            found.append(Finding("ip_address", *match.span(1)))
    for match in budget.candidates("ip_address", _IPV6, text):
        candidate = match.group(1)
        if candidate.count(":") < 2 or not any(c.isalnum() for c in candidate):
            continue
        try:
            v6 = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        taken.add(*match.span(1))
        if private_ips or _personal_ip(v6):
            found.append(Finding("ip_address", *match.span(1)))
    for match in budget.candidates("phone", _PHONE, text):
        start, end = match.span()
        if taken.overlaps(start, end) or not _phone_ok(match.group(0)):
            continue
        if text[start - 1 : start] == "-" or text[end : end + 1] == "-":
            continue  # one group of a longer dashed number (a card, a part number)
        found.append(Finding("phone", start, end))
        if first_of_kind:
            break
    return found + budget.findings(text)
