"""How injection() reads text: the normalised text and a second reading with look-alikes,
leetspeak and spaced-out letters folded; invisible characters; base64, hex payloads decoded."""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import unicodedata
from functools import lru_cache

from authz.detectors.scan import any_of, compile_re

_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_TAGS = range(0xE0000, 0xE0080)

# Look-alike letters (Cyrillic, Greek) and digits used as letters, folded to Latin for a
# second reading of the text; the first reading keeps them, for non-Latin phrases.
_CONFUSABLES: dict[str, str] = {
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


def _fold_confusables(text: str) -> str:
    """Look-alikes and leet digits to Latin letters: one str.replace per letter present,
    which beats str.translate (a dict lookup per character) on non-ASCII text."""
    for char, latin in _CONFUSABLES.items():
        if char in text:
            text = text.replace(char, latin)
    return text


_BASE64_RUN = compile_re(r"[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_\-]{24,}={0,2}")
_HEX_RUN = compile_re(r"(?:0x)?(?:[0-9a-fA-F]{2}[\s:]?){12,}")
# Past MAX_RUNS runs, the rest of the text is read in bulk with Python's re (C time per
# match, where the RE2 wrapper costs microseconds): the same base64 runs (each branch one
# character class repeated: linear), and for hex every stretch of hex digits and separators.
_BASE64_BULK = re.compile(_BASE64_RUN.pattern)
_HEX_BULK = re.compile(r"[0-9a-fA-F\t\n\f\r :]{24,}")
MAX_RUNS = 64  # runs of each kind decoded one by one; the rest are decoded as one text
MAX_PAYLOADS = 8  # decoded payloads judged one by one; the rest are judged as one text


_SUSPECT_CLASS = (
    "[\u00ad\u180e\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
)
_SUSPECT = compile_re(_SUSPECT_CLASS)
# The same class, removed at C speed (str.translate with a table runs a dict lookup per
# character of non-ASCII text): one character class, linear in Python's re too.
_STRIP = re.compile(_SUSPECT_CLASS)


def normalise(text: str) -> str:
    """NFKC, zero-width, bidi and tag characters removed, lower-case, runs of spaces folded
    (line breaks kept, for patterns anchored at the start of a line)."""
    if not text.isascii():  # ASCII is NFKC already and holds none of the stripped characters
        text = unicodedata.normalize("NFKC", _STRIP.sub("", text))
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
FOLDABLE = compile_re(r"[0-9@$]|[^\x00-\x7f]|   ")


# injection() and injection_score() read the same text in one request: the second asks for
# readings the first has just made.
@lru_cache(maxsize=4)
def readings(text: str) -> tuple[str, ...]:
    """The normalised text, and a second reading with look-alikes, leetspeak and spaced-out
    letters folded, when that differs."""
    first = normalise(text)
    if not FOLDABLE.search(text):
        return (first,)  # nothing a second reading would change
    spaced = unicodedata.normalize("NFKC", text).lower()
    second = normalise(_fold_confusables(_despaced(spaced)))
    return (first,) if second == first else (first, second)


def _is_pictograph(char: str) -> bool:
    return unicodedata.category(char) == "So" or 0x1F000 <= ord(char) <= 0x1FAFF


def invisible(text: str) -> bool:
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


def _printable(decoded: str, least: int) -> bool:
    return len(decoded) >= least and sum(map(str.isprintable, decoded)) > 0.9 * len(decoded)


def decoded_payloads(text: str) -> list[str]:
    """Printable text hidden as base64 or hex in the original text. Past MAX_RUNS runs of a
    kind, the others are decoded together as one payload, unfiltered (text dense with runs
    costs one decode, and a payload hidden among junk runs is still read)."""
    if not ANY_RUN.search(text):
        return []  # one scan for the common case: neither kind of run
    found = []
    runs = list(itertools.islice(_BASE64_RUN.finditer(text), MAX_RUNS + 1))
    for match in runs[:MAX_RUNS]:
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
        if _printable(decoded, 12):
            found.append(decoded)
    if len(runs) > MAX_RUNS:  # each run cut to whole 4-character groups, so they align
        rest = _BASE64_BULK.findall(text, runs[MAX_RUNS].start())
        joined = "".join(r[: len(r.rstrip("=")) // 4 * 4] for r in rest)
        raw = base64.b64decode(joined.translate(_URLSAFE), validate=False)
        found.append(raw.decode("utf-8", errors="ignore"))
    runs = list(itertools.islice(_HEX_RUN.finditer(text), MAX_RUNS + 1))
    for match in runs[:MAX_RUNS]:
        digits = _NOT_HEX.sub("", match.group(0).removeprefix("0x"))
        try:
            decoded = bytes.fromhex(digits).decode("utf-8", errors="ignore")
        except ValueError:
            continue
        if _printable(decoded, 8):
            found.append(decoded)
    if len(runs) > MAX_RUNS:
        rest = (_NOT_HEX.sub("", r) for r in _HEX_BULK.findall(text, runs[MAX_RUNS].start()))
        digits = "".join(d[: len(d) // 2 * 2] for d in rest)
        found.append(bytes.fromhex(digits).decode("utf-8", errors="ignore"))
    return found


_URLSAFE = str.maketrans("-_", "+/")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")
ANY_RUN = any_of([_BASE64_RUN, _HEX_RUN])
