"""The domain warning: unseen elements, and compositions farther from the training data
than any validation row (distances against a brute-force numpy oracle)."""

import json

import numpy as np
import pytest

from stoichnet.chem import parse_formulas
from stoichnet.evaluate.domain import Domain, fit_domain

TRAIN = ["Fe2O3", "FeO", "Fe3O4", "NaCl", "KCl", "MgO", "CaO", "Al2O3", "SiO2", "TiO2"]
VAL = ["NaBr", "Fe2O", "MgAl2O4"]


def l1_to_nearest(formulas, reference):
    """Brute-force oracle: min over the reference of sum |fraction differences|."""
    out = []
    for q in parse_formulas(formulas).compositions:
        fq = dict(q.fractions())
        best = np.inf
        for r in parse_formulas(reference).compositions:
            fr = dict(r.fractions())
            best = min(best, sum(abs(fq.get(e, 0) - fr.get(e, 0)) for e in set(fq) | set(fr)))
        out.append(best)
    return np.array(out)


def test_the_threshold_is_the_farthest_validation_row():
    domain = fit_domain(TRAIN, VAL)
    assert domain.threshold == pytest.approx(l1_to_nearest(VAL, TRAIN).max())
    assert set(domain.elements) == {"O", "Na", "Mg", "Al", "Si", "Cl", "K", "Ca", "Ti", "Fe"}
    queries = ["FeO", "PuO2", "NaCl2", "Cs"]
    np.testing.assert_allclose(domain.distances(queries), l1_to_nearest(queries, TRAIN))


def test_check_names_the_reason():
    domain = fit_domain(TRAIN, VAL)
    inside, unseen, far = domain.check(["Fe2O3", "PuO2", "Si3Ti"])
    assert inside == ""
    assert unseen.startswith("element(s) Pu absent from the training data")
    assert "nearest training composition at distance" in far and "validation rows" in far
    assert domain.check(["NaCl"]) == [""]


def test_the_reference_is_a_seeded_sample_and_the_domain_round_trips():
    domain = fit_domain(TRAIN, VAL, max_reference=4, seed=1)
    assert len(domain.reference) == 4 and set(domain.reference) <= set(TRAIN)
    assert fit_domain(TRAIN, VAL, max_reference=4, seed=1) == domain
    assert Domain.from_dict(json.loads(json.dumps(domain.to_dict()))) == domain
