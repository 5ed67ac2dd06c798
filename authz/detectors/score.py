"""injection_score(x): a learned probability that text is a prompt injection, in [0, 1].

A logistic regression over three kinds of feature of the text's normalised reading (the one
injection() judges: look-alikes, leetspeak and spacing folded): hashed word unigrams and
bigrams, hashed character 4-grams of the first 2,000 characters, and the pattern layer's
signals and persona-marker count. Inference is a dot product in numpy; the weights live in
`injection_model.npz` next to this file, written by tools/train_injection.py.

The cost is bounded whatever the text: words are read from the first MAX_WORDS of the
reading (a prompt longer than that is judged by its head, and by the pattern layer's
signals over the whole text), tokens are hashed once each, and the word split is one
character class (Python's `re`, linear: no alternation to backtrack into).
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

import authz.detectors.injection as rules

MODEL = Path(__file__).with_name("injection_model.npz")
BITS = 18  # hashed buckets: 2**18
CHAR_SPAN = 2000  # characters read for character n-grams
MAX_WORDS = 2048  # words read for word unigrams and bigrams
_WORD = re.compile(r"[\w']+")  # letters, digits, _ and ': what [\pL\pN_']+ reads
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


def _hash(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & ((1 << BITS) - 1)


def features(text: str, signals: list[str] | None = None) -> Features:
    """The features of one text; `signals`: injection_signals(text), when already known."""
    reading = rules.readings(text)[-1]
    words = [m.group() for m in itertools.islice(_WORD.finditer(reading), MAX_WORDS)]
    tokens = {f"w:{w}" for w in words}
    tokens.update(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    span = " ".join(reading[:CHAR_SPAN].split())
    tokens.update(f"c:{span[i : i + 4]}" for i in range(0, max(len(span) - 3, 0), 2))
    buckets = np.fromiter({_hash(t) for t in tokens}, dtype=np.int64)
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
