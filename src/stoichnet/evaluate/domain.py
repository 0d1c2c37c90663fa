"""Is a formula inside what a model has seen? The domain warning of ``stoichnet predict``.

Two reasons flag a composition:

- an element absent from every training formula (the network's weights for that element
  never received a gradient; the forest never split on it);
- a composition far from every training composition: its distance to the nearest
  training composition in fraction space (L1 over the atomic fractions of all elements,
  0 to 2) is beyond the largest such distance among the validation rows, the rows whose
  error the model's reported quality (and its recalibration) describe.

A :class:`Domain` is small enough for a model card: the training elements, a seeded sample
of at most :data:`MAX_REFERENCE` distinct training formulas (the nearest-neighbour search
runs against it, for the validation rows and later queries alike) and the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances_argmin_min

from stoichnet.chem import parse_formulas
from stoichnet.chem.fractions import fraction_matrix
from stoichnet.chem.periodic_table import SYMBOLS
from stoichnet.util.checks import check_int

MAX_REFERENCE = 5000
"""Most training formulas a :class:`Domain` keeps for its nearest-neighbour distances."""


def _fractions(compositions) -> np.ndarray:
    """(n, 118) dense atomic fractions of parsed compositions."""
    return fraction_matrix(compositions, SYMBOLS).toarray()


@dataclass(frozen=True)
class Domain:
    """What the training data covered.

    Attributes:
        elements: the symbols present in the training formulas.
        reference: training formulas the distances are measured to.
        threshold: the largest distance of a validation row to its nearest reference
            composition (L1 in fraction space).
    """

    elements: tuple[str, ...]
    reference: tuple[str, ...]
    threshold: float

    def distances(self, compositions) -> np.ndarray:
        """(n,) L1 distance of each composition (parsed, or formulas) to the nearest
        reference composition."""
        reference = _fractions(parse_formulas(self.reference).compositions)
        queries = _fractions(compositions)
        return pairwise_distances_argmin_min(queries, reference, metric="manhattan")[1]

    def check(self, formulas: Sequence) -> list[str]:
        """For each formula (a string or Composition), "" when inside the domain, else the
        reasons, e.g. "element(s) Pu absent from the training data; nearest training
        composition at distance 0.83 (validation rows: at most 0.41)"."""
        parsed = parse_formulas(formulas)
        known = set(self.elements)
        distances = self.distances(parsed.compositions)
        reasons = []
        for comp, distance in zip(parsed.compositions, distances, strict=True):
            why = []
            unseen = [e for e in comp.elements if e not in known]
            if unseen:
                why.append(f"element(s) {', '.join(unseen)} absent from the training data")
            if distance > self.threshold:
                why.append(f"nearest training composition at distance {distance:.3g} "
                           f"(validation rows: at most {self.threshold:.3g})")
            reasons.append("; ".join(why))
        return [reasons[i] for i in parsed.inverse]

    def to_dict(self) -> dict:
        return {"elements": list(self.elements), "reference": list(self.reference),
                "threshold": self.threshold, "distance": "L1 over atomic fractions"}

    @classmethod
    def from_dict(cls, data: dict) -> Domain:
        return cls(tuple(data["elements"]), tuple(data["reference"]), float(data["threshold"]))


def fit_domain(train_formulas: Sequence, val_formulas: Sequence, *,
               max_reference: int = MAX_REFERENCE, seed: int = 0) -> Domain:
    """The :class:`Domain` of a model trained on ``train_formulas`` and validated on
    ``val_formulas`` (formula strings); at most ``max_reference`` distinct training
    formulas, drawn with ``seed``, are kept as the reference."""
    max_reference = check_int("max_reference", max_reference, 1)
    train = parse_formulas(train_formulas)
    elements = sorted({e for comp in train.compositions for e in comp.elements},
                      key=SYMBOLS.index)
    distinct = sorted({str(f) for f in train_formulas})
    if len(distinct) > max_reference:
        keep = np.random.default_rng(seed).choice(len(distinct), max_reference, replace=False)
        distinct = [distinct[i] for i in np.sort(keep)]
    domain = Domain(tuple(elements), tuple(distinct), 0.0)
    threshold = float(domain.distances(parse_formulas(val_formulas).compositions).max())
    return Domain(domain.elements, domain.reference, threshold)
