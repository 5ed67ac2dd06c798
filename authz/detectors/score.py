"""injection_score(x): a learned probability that text is a prompt injection, in [0, 1].

A logistic regression over three kinds of feature of the text's normalised reading (the one
injection() judges: look-alikes, leetspeak and spacing folded): hashed word unigrams and
bigrams, hashed character 4-grams of the first 2,000 characters, and the pattern layer's
signals and persona-marker count. Inference is a dot product in numpy; the weights live in
`injection_model.npz` next to this file, written by tools/train_injection.py.

The cost is bounded whatever the text: words are read from the first WORD_SPAN characters
of the reading, at most MAX_WORDS of them (a prompt longer than that is judged by its head,
and by the pattern layer's signals over the whole text), and every step after the reading is
a fixed number of numpy operations over those characters: no Python work per word or
n-gram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

import authz.detectors.injection as rules

MODEL = Path(__file__).with_name("injection_model.npz")
BITS = 18  # hashed buckets: 2**18
CHAR_SPAN = 2000  # characters read for character n-grams
WORD_SPAN = 32768  # characters read for words
MAX_WORDS = 2048  # words read for word unigrams and bigrams
SIGNALS = (
    "delimiter_spoofing",
    "encoded_payload",
    "fake_completion",
    "indirect_injection",
    "instruction_override",
    "invisible_characters",
    "new_task",
    "payload_splitting",
    "prompt_exfiltration",
    "role_hijack",
    "tool_coercion",
)
# dense features after the hashed block: one per signal, persona markers, length
DENSE = len(SIGNALS) + 2


@dataclass(frozen=True)
class Features:
    """One text as sparse hashed buckets (unit length) and dense features."""

    buckets: np.ndarray  # int64 bucket indices
    values: np.ndarray  # float32 weights, L2-normalised
    dense: np.ndarray  # float32, DENSE values


# Tokens are hashed in numpy: a polynomial hash of each token's code points (mod 2**64,
# numpy's unsigned wrap-around), salted by kind so that a word, a word pair and a character
# 4-gram do not share hashes by construction, then mixed (a multiply-xorshift finaliser) so
# that the low BITS bits spread.
_P = 0x100000001B3  # odd, so invertible mod 2**64
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_SALT_WORD, _SALT_PAIR, _SALT_CHAR = (np.uint64(s) for s in (0x9E37, 0x7F4A, 0x5851))
_MASK = np.uint64((1 << BITS) - 1)
# P**(i+1) and P**-i for every offset a word can start or end at, computed once.
_POWERS = np.cumprod(np.full(WORD_SPAN, _P, dtype=np.uint64))
_INVERSE = np.cumprod(np.full(WORD_SPAN, pow(_P, -1, 1 << 64), dtype=np.uint64))
_INVERSE = np.concatenate(([np.uint64(1)], _INVERSE[:-1]))
# Word characters: ASCII letters, digits, _ and ', and every non-ASCII character (the reading
# is NFKC-normalised; a non-ASCII mark inside a word stays part of it).
_ASCII_WORD = np.zeros(128, dtype=bool)
for _c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'":
    _ASCII_WORD[ord(_c)] = True


def _codes(text: str) -> np.ndarray:
    """Code points of text as uint64."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _buckets(hashes: np.ndarray, salt: np.uint64) -> np.ndarray:
    h = hashes ^ salt
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return (h & _MASK).astype(np.int64)


def _word_hashes(reading: str) -> np.ndarray:
    """One hash per word of the first WORD_SPAN characters (at most MAX_WORDS): the sum of
    (code + 1) * P**(offset + 1) over the word's characters, summed for all words at once
    with global powers of P, then brought back to each word's start by P's inverse."""
    codes = _codes(reading[:WORD_SPAN])
    word = np.where(codes < 128, _ASCII_WORD[np.minimum(codes, 127)], True)
    before = np.empty_like(word)  # whether the character before is a word character
    before[:1] = False
    before[1:] = word[:-1]
    starts = np.flatnonzero(word & ~before)[:MAX_WORDS]
    if not len(starts):
        return np.zeros(0, dtype=np.uint64)
    weighted = np.where(word, codes + np.uint64(1), np.uint64(0)) * _POWERS[: len(codes)]
    return np.add.reduceat(weighted, starts) * _INVERSE[starts]


def _char_hashes(span: str) -> np.ndarray:
    """One hash per character 4-gram starting at an even offset."""
    codes = _codes(span) + np.uint64(1)
    end = len(codes) - 3
    if end <= 0:
        return np.zeros(0, dtype=np.uint64)
    grams = codes[0:end:2] * np.uint64(_P)
    for k in (1, 2, 3):
        grams = (grams + codes[k : end + k : 2]) * np.uint64(_P)
    return grams


def _unique(buckets: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, at a fifth of its cost on arrays this small)."""
    ordered = np.sort(buckets)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))[: len(ordered)]]


def features(text: str, signals: list[str] | None = None) -> Features:
    """The features of one text; `signals`: injection_signals(text), when already known."""
    reading = rules.readings(text)[-1]
    words = _word_hashes(reading)
    buckets = _unique(
        np.concatenate(
            [
                _buckets(_char_hashes(" ".join(reading[:CHAR_SPAN].split())), _SALT_CHAR),
                _buckets(words, _SALT_WORD),
                _buckets(words[:-1] * _MIX + words[1:], _SALT_PAIR),
            ]
        )
    )
    values = np.full(len(buckets), 1.0 / math.sqrt(max(len(buckets), 1)), dtype=np.float32)
    found = set(rules.injection_signals(text) if signals is None else signals)
    dense = np.zeros(DENSE, dtype=np.float32)
    for i, name in enumerate(SIGNALS):
        dense[i] = name in found
    dense[len(SIGNALS)] = min(rules.hijack_markers(reading), 6) / 6
    dense[len(SIGNALS) + 1] = min(math.log1p(len(text)) / 10, 1.0)
    return Features(buckets, values, dense)


@dataclass(frozen=True)
class ScoreModel:
    """Weights of the logistic regression."""

    hashed: np.ndarray  # float32, 2**BITS
    dense: np.ndarray  # float32, DENSE
    bias: float

    def score(self, feats: Features) -> float:
        """The probability of injection for one text's features."""
        z = float(np.dot(self.hashed[feats.buckets], feats.values))
        z += float(np.dot(self.dense, feats.dense)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def save(self, path: Path) -> None:
        """Write the weights (float16, compressed)."""
        np.savez_compressed(
            path,
            hashed=self.hashed.astype(np.float16),
            dense=self.dense.astype(np.float32),
            bias=np.array([self.bias], dtype=np.float32),
            bits=np.array([BITS]),
        )

    @classmethod
    def load(cls, path: Path) -> ScoreModel:
        """Read weights written by save()."""
        with np.load(path) as data:
            if int(data["bits"][0]) != BITS:
                raise ValueError(f"{path}: model hashed into 2**{int(data['bits'][0])} buckets")
            return cls(
                data["hashed"].astype(np.float32),
                data["dense"].astype(np.float32),
                float(data["bias"][0]),
            )


@lru_cache(maxsize=1)
def shipped_model() -> ScoreModel:
    """The committed model (loaded once per process)."""
    return ScoreModel.load(MODEL)


def injection_score(text: str, signals: list[str] | None = None) -> float:
    """Probability in [0, 1] that text is a prompt injection (the shipped model);
    `signals`: injection_signals(text), when the caller has them (injection() on the same
    text in the same request)."""
    if not text.strip():
        return 0.0
    return shipped_model().score(features(text, signals))
