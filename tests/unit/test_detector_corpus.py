"""Detector quality on labelled corpora: fails below floors set from our own measurements.

`tuning` is the corpus the patterns were developed against (in-sample figures); `heldout`
was written separately and never used to tune (the honest estimate). Both are reported at
the end of the run; README states the figures.
"""

from __future__ import annotations

import json

import pytest

from tests.support.corpus import DATA, DETECTORS, FILES, evaluate

# (precision, recall) floors, a little under what was measured (README has the figures).
FLOORS = {
    ("tuning", "secrets"): (0.97, 0.97),
    ("tuning", "pii"): (0.97, 0.97),
    ("tuning", "pii-all-ips"): (0.97, 0.97),
    ("tuning", "injection"): (0.95, 0.95),
    ("heldout", "secrets"): (0.95, 0.90),
    ("heldout", "pii"): (0.95, 0.95),
    ("heldout", "pii-all-ips"): (0.95, 0.95),
    ("heldout", "injection"): (0.90, 0.40),
}
REPORT: list[str] = []


@pytest.mark.parametrize(("corpus", "detector"), sorted(FLOORS))
def test_precision_and_recall_floors(corpus: str, detector: str) -> None:
    scores = evaluate(corpus, detector)
    REPORT.append(scores.row())
    precision, recall = FLOORS[corpus, detector]
    assert scores.precision >= precision, scores.row()
    assert scores.recall >= recall, scores.row()


@pytest.mark.parametrize("detector", sorted(set(DETECTORS) - set(FILES)))
def test_tuning_corpus_is_big_enough(detector: str) -> None:
    rows = [json.loads(x) for x in (DATA / f"{detector}.jsonl").read_text().splitlines()]
    assert sum(r["label"] == "attack" for r in rows) >= 200
    assert sum(r["label"] == "benign" for r in rows) >= 200
    assert sum(r["label"] == "benign" and r["note"].startswith("look-alike") for r in rows) >= 100
