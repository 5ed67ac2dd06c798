"""Precision and recall of the detectors on the labelled corpora in tests/data/detectors.

The corpora count every IP address as `ip_address` (private and documentation ones too);
`pii()` reports public addresses only, since a private, loopback, link-local or
documentation address names no one's connection. So `pii` is scored against the corpus
relabelled to that convention (an `ip_address` label stands only where the text holds a
public address; a line left with no kind is benign), and `pii-all-ips` scores the detector
with every address reported against the corpus as labelled.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from authz import detectors

DATA = Path(__file__).resolve().parents[1] / "data" / "detectors"

DETECTORS: dict[str, Callable[[str], list[str]]] = {
    "secrets": lambda text: detectors.kinds(detectors.secret_findings(text)),
    "pii": lambda text: detectors.kinds(detectors.pii_findings(text)),
    "pii-all-ips": lambda text: detectors.kinds(detectors.pii_findings(text, private_ips=True)),
    "injection": detectors.injection_signals,
}
FILES = {"pii-all-ips": "pii"}  # detector -> corpus file, when the names differ


def _public_only(row: dict) -> dict:
    """A pii row under the public-address convention."""
    if "ip_address" not in row["kinds"]:
        return row
    addresses = [
        ipaddress.ip_address(row["text"][f.start : f.end])
        for f in detectors.pii_findings(row["text"], private_ips=True)
        if f.kind == "ip_address"
    ]
    if any(a.is_global and not a.is_multicast for a in addresses):
        return row
    kinds = [k for k in row["kinds"] if k != "ip_address"]
    return {**row, "kinds": kinds, "label": "attack" if kinds else "benign"}


RELABEL: dict[str, Callable[[dict], dict]] = {"pii": _public_only}


@dataclass
class Scores:
    """Text-level confusion counts (an attack counts as found when any kind is reported),
    plus per-kind recall."""

    corpus: str
    detector: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    kind_hits: dict[str, list[int]] = field(default_factory=dict)  # kind -> [found, total]

    @property
    def precision(self) -> float:
        """Of the texts flagged, the share that were attacks."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """Of the attacks, the share flagged."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    def row(self) -> str:
        """One line of the report."""
        return (
            f"{self.corpus:<9} {self.detector:<10} precision {self.precision:.3f}  "
            f"recall {self.recall:.3f}  (tp {self.tp}, fp {self.fp}, fn {self.fn}, "
            f"tn {self.tn})"
        )


def evaluate(corpus: str, detector: str) -> Scores:
    """Score one detector on one corpus ("tuning" or "heldout")."""
    folder = DATA if corpus == "tuning" else DATA / corpus
    scores = Scores(corpus, detector)
    run = DETECTORS[detector]
    relabel = RELABEL.get(detector, lambda row: row)
    with open(folder / f"{FILES.get(detector, detector)}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = relabel(json.loads(line))
            found = set(run(row["text"]))
            if row["label"] == "attack":
                scores.tp += bool(found)
                scores.fn += not found
                for kind in row["kinds"]:
                    hit = scores.kind_hits.setdefault(kind, [0, 0])
                    hit[0] += kind in found
                    hit[1] += 1
            else:
                scores.fp += bool(found)
                scores.tn += not found
    return scores


if __name__ == "__main__":
    for name in ("tuning", "heldout"):
        if (DATA if name == "tuning" else DATA / name).is_dir():
            for detector in DETECTORS:
                print(evaluate(name, detector).row())
