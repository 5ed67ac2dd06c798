"""Train injection_score's model, and measure it leave-one-source-out.

    .venv/bin/python tools/train_injection.py         # writes authz/detectors/injection_model.npz
    .venv/bin/python tools/train_injection.py --loso  # prints the table, writes nothing

Data: tests/data/detectors/injection.jsonl (the project's tuning corpus) and
tests/data/detectors/sources/*.jsonl (extracted from pip packages by
tools/extract_injection_corpora.py; see the README there). The heldout corpus
(tests/data/detectors/heldout/) is used only to measure, never to train the shipped model.
Training is full-batch logistic regression with L2, by Adam, in numpy, from a zero start:
the same data give the same weights.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from authz.detectors import score as model

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "detectors"
# Sources that share templates are held out together.
FAMILIES = {
    "garak": "garak+pyrit+easyjailbreak",
    "pyrit": "garak+pyrit+easyjailbreak",
    "easyjailbreak": "garak+pyrit+easyjailbreak",
}
EPOCHS = 150
L2 = 1e-4
RATE = 0.05


@dataclass(frozen=True)
class Text:
    """One labelled text and where it came from."""

    text: str
    attack: bool
    family: str


def corpus(heldout: bool = False) -> list[Text]:
    """Every labelled text: the tuning corpus, the package sources, and (if asked) the
    project's heldout corpus."""
    files = [("own-tuning", DATA / "injection.jsonl")]
    files += [(p.stem, p) for p in sorted((DATA / "sources").glob("*.jsonl"))]
    if heldout:
        files.append(("own-heldout", DATA / "heldout" / "injection.jsonl"))
    texts = []
    for name, path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.append(Text(row["text"], row["label"] == "attack", FAMILIES.get(name, name)))
    return texts


@dataclass
class Matrix:
    """Features of many texts: hashed part in CSR form, dense part as an array."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    dense: np.ndarray

    def rows(self, keep: np.ndarray) -> Matrix:
        """The sub-matrix of the rows where keep is true."""
        starts, ends = self.indptr[:-1][keep], self.indptr[1:][keep]
        pieces = [np.arange(s, e) for s, e in zip(starts, ends, strict=True)]
        take = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(ends - starts)])
        return Matrix(indptr, self.indices[take], self.values[take], self.dense[keep])


def featurize(texts: list[Text]) -> Matrix:
    """The feature matrix of texts."""
    feats = [model.features(t.text) for t in texts]
    indptr = np.concatenate([[0], np.cumsum([len(f.buckets) for f in feats])])
    return Matrix(
        indptr,
        np.concatenate([f.buckets for f in feats]),
        np.concatenate([f.values for f in feats]),
        np.stack([f.dense for f in feats]),
    )


def _logits(m: Matrix, hashed: np.ndarray, dense: np.ndarray, bias: float) -> np.ndarray:
    row = np.repeat(np.arange(len(m.indptr) - 1), np.diff(m.indptr))
    part = np.bincount(row, weights=hashed[m.indices] * m.values, minlength=len(m.indptr) - 1)
    return part + m.dense @ dense + bias


def train(m: Matrix, y: np.ndarray, groups: np.ndarray) -> model.ScoreModel:
    """Logistic regression; each (group, class) pair weighs the same in total, so a big
    source does not drown a small one."""
    weight = np.zeros(len(y))
    for g in np.unique(groups):
        for label in (0, 1):
            sel = (groups == g) & (y == label)
            if sel.any():
                weight[sel] = 1.0 / sel.sum()
    weight /= weight.sum()
    size = 1 << model.BITS
    params = [np.zeros(size), np.zeros(m.dense.shape[1]), np.zeros(1)]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    row = np.repeat(np.arange(len(y)), np.diff(m.indptr))
    for step in range(1, EPOCHS + 1):
        z = _logits(m, params[0], params[1], float(params[2][0]))
        error = (1.0 / (1.0 + np.exp(-z)) - y) * weight
        grads = [
            np.bincount(m.indices, weights=error[row] * m.values, minlength=size) + L2 * params[0],
            m.dense.T @ error + L2 * params[1],
            np.array([error.sum()]),
        ]
        for p, g, (m1, m2) in zip(params, grads, moments, strict=True):
            m1 *= 0.9
            m1 += 0.1 * g
            m2 *= 0.999
            m2 += 0.001 * g * g
            p -= RATE * (m1 / (1 - 0.9**step)) / (np.sqrt(m2 / (1 - 0.999**step)) + 1e-8)
    return model.ScoreModel(
        params[0].astype(np.float32), params[1].astype(np.float32), float(params[2][0])
    )


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half)."""
    pos, neg = scores[y == 1], scores[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    values = np.concatenate([pos, neg])
    for v in np.unique(values):  # average ranks of ties
        tie = values == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@dataclass(frozen=True)
class Fold:
    """Figures for one held-out family."""

    family: str
    attacks: int
    benign: int
    rules_recall: float
    rules_fpr: float
    score_auc: float
    score_recall: float  # at THRESHOLD
    score_fpr: float


THRESHOLD = 0.5


def loso(texts: list[Text], m: Matrix | None = None) -> list[Fold]:
    """Train without each family in turn and judge on it; the project's tuning corpus is
    always in training, never judged."""
    m = m or featurize(texts)
    y = np.array([t.attack for t in texts], dtype=float)
    fam = np.array([t.family for t in texts])
    signals = m.dense[:, : len(model.SIGNALS)].sum(axis=1) > 0
    folds = []
    for family in sorted(set(fam) - {"own-tuning"}):
        test = fam == family
        train_rows = ~test & (fam != "own-heldout")
        fitted = train(m.rows(train_rows), y[train_rows], fam[train_rows])
        sub = m.rows(test)
        z = _logits(sub, fitted.hashed, fitted.dense, fitted.bias)
        p = 1.0 / (1.0 + np.exp(-z))
        yt = y[test]
        pos, neg = max(yt.sum(), 1), max((1 - yt).sum(), 1)
        folds.append(
            Fold(
                family,
                int(yt.sum()),
                int((1 - yt).sum()),
                float((signals[test] & (yt == 1)).sum() / pos),
                float((signals[test] & (yt == 0)).sum() / neg),
                auc(p, yt),
                float(((p >= THRESHOLD) & (yt == 1)).sum() / pos),
                float(((p >= THRESHOLD) & (yt == 0)).sum() / neg),
            )
        )
    return folds


def table(folds: list[Fold]) -> list[str]:
    """The LOSO table as lines of text."""
    lines = [
        f"{'held-out source':<27} {'attacks':>7} {'benign':>6}  injection() R / FPR   "
        f"injection_score AUC, R / FPR at {THRESHOLD}"
    ]
    for f in folds:
        lines.append(
            f"{f.family:<27} {f.attacks:>7} {f.benign:>6}  {f.rules_recall:11.3f} / "
            f"{f.rules_fpr:.3f}   {f.score_auc:9.3f}, {f.score_recall:.3f} / {f.score_fpr:.3f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loso", action="store_true", help="print the LOSO table only")
    parser.add_argument("--out", type=Path, default=model.MODEL)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.loso:
        texts = corpus(heldout=True)
        print("\n".join(table(loso(texts))))
    else:
        texts = corpus()
        m = featurize(texts)
        y = np.array([t.attack for t in texts], dtype=float)
        fitted = train(m, y, np.array([t.family for t in texts]))
        fitted.save(args.out)
        print(f"{args.out}: {args.out.stat().st_size} bytes from {len(texts)} texts")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
