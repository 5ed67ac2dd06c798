"""Measure static token embeddings (wordllama) as extra features of injection_score.

    .venv/bin/pip install wordllama==0.4.0.post1   # not a dependency of authz
    .venv/bin/python -m tools.measure_embeddings

Issue 18 asks whether static embeddings earn their size. This script answers it out of
source with the protocol of tools/train_injection.py (same corpora, same families held out
together, same logistic regression, the tuning corpus always in training) for two feature
sets: the shipped one (hashed n-grams + rule signals) and the same plus the mean of the
text's token embeddings from wordllama's 256-dimensional table (32,000 tokens x 256,
float16, 16 MB; distilled from LLM embedding layers, MIT licence). The files are opened
directly with `safetensors` and `tokenizers`: wordllama 0.4.0.post1's own loader tries the
network even when the files are in the wheel. Nothing is written; the figures go to stdout
and the README records them.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools import train_injection as ti

MAX_TOKENS = 512  # a text is embedded by its first MAX_TOKENS tokens
FP_LEVELS = (0.015, 0.05)  # recall is reported at these false-positive rates


def _package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise SystemExit("wordllama is not installed: .venv/bin/pip install wordllama")
    return Path(spec.origin).parent


@dataclass(frozen=True)
class Embedder:
    """Mean-pooled, unit-length static token embeddings."""

    table: np.ndarray  # float32, tokens x 256
    tokenizer: object

    @classmethod
    def load(cls) -> Embedder:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = _package_dir()
        table = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))
        tokenizer = Tokenizer.from_file(
            str(root / "tokenizers" / "l2_supercat_tokenizer_config.json")
        )
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return cls(table["embedding.weight"].astype(np.float32), tokenizer)

    def embed(self, text: str) -> np.ndarray:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids[:MAX_TOKENS]
        if not ids:
            return np.zeros(self.table.shape[1], dtype=np.float32)
        mean = self.table[ids].mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-6)


def recall_at_fpr(p: np.ndarray, y: np.ndarray, fpr: float) -> float:
    """Recall at the strictest threshold whose false-positive rate on this source is <= fpr
    (a point of the ROC curve: nothing is trained on it)."""
    neg = np.sort(p[y == 0])[::-1]
    allowed = int(np.floor(fpr * len(neg)))
    threshold = neg[allowed] if allowed < len(neg) else -np.inf
    return float((p[y == 1] > threshold).mean()) if (y == 1).any() else float("nan")


def folds(texts: list[ti.Text], m: ti.Matrix) -> list[tuple[str, int, int, list[float]]]:
    """Per held-out family: attacks, benign, [AUC, R@0.5, FPR@0.5, R@each FP level]."""
    y = np.array([t.attack for t in texts], dtype=float)
    fam = np.array([t.family for t in texts])
    rows = []
    for family in sorted(set(fam) - {"own-tuning"}):
        test = fam == family
        keep = ~test & (fam != "own-heldout")
        fitted = ti.train(m.rows(keep), y[keep], fam[keep])
        z = ti._logits(m.rows(test), fitted.hashed, fitted.dense, fitted.bias)
        p, yt = 1.0 / (1.0 + np.exp(-z)), y[test]
        figures = [ti.auc(p, yt)]
        figures += [
            float(((p >= 0.5) & (yt == 1)).sum() / max(yt.sum(), 1)),
            float(((p >= 0.5) & (yt == 0)).sum() / max((1 - yt).sum(), 1)),
        ]
        figures += [recall_at_fpr(p, yt, level) for level in FP_LEVELS]
        rows.append((family, int(yt.sum()), int((1 - yt).sum()), figures))
    return rows


def per_kb_ms(embedder: Embedder) -> float:
    """CPU ms to embed 1 KB of English prose (median of 200)."""
    text = ("The quarterly report covers revenue, churn and the hiring plan for next year. " * 14)[
        :1024
    ]
    times = []
    for _ in range(200):
        started = time.process_time()
        embedder.embed(text)
        times.append(time.process_time() - started)
    return float(np.median(times) * 1000)


def main() -> None:
    texts = ti.corpus(heldout=True)
    base = ti.featurize(texts)
    embedder = Embedder.load()
    emb = np.stack([embedder.embed(t.text) for t in texts])
    with_emb = ti.Matrix(base.indptr, base.indices, base.values, np.hstack([base.dense, emb]))
    levels = " ".join(f"R@{level:.1%}" for level in FP_LEVELS)
    print(f"{len(texts)} texts; columns: AUC, R@0.5, FPR@0.5, {levels}")
    for name, m in (("n-grams + signals", base), ("+ wordllama mean embedding", with_emb)):
        print(name)
        for family, attacks, benign, f in folds(texts, m):
            print(f"  {family:<27} {attacks:>4} {benign:>4}  " + "  ".join(f"{v:.3f}" for v in f))
    table = _package_dir() / "weights" / "l2_supercat_256.safetensors"
    print(
        f"table {table.stat().st_size / 1e6:.1f} MB; embed 1 KB: {per_kb_ms(embedder):.3f} ms CPU"
    )


if __name__ == "__main__":
    main()
