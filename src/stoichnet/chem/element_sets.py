"""Formulas as sets of elements: the input of the set models (Roost, CrabNet).

A formula becomes the members of one set in the layout of ``stoichnet.nn.layers.sets``:
``X: (n, m, 2)`` float, ``X[s, i, 0]`` the atomic number Z of the i-th element of formula
s (the token id: row Z of an :func:`element_embedding`; 0 marks padding), ``X[s, i, 1]``
its atomic fraction (amount / total atoms, > 0; 0 at padding). Elements are in the order
the formula names them; a set layer does not care. ``m`` is the set width: every formula
is padded to it, and one with more elements than ``m`` is refused by row.

Element embeddings are read from CBFV's package data (``CBFV/element_properties/
<name>.csv``, as :mod:`stoichnet.chem.element_tables` reads its presets):

- ``mat2vec``: 200-d word2vec vectors of the elements learned from 3.3 million materials
  science abstracts (Tshitoyan et al., Nature 571, 95 (2019), github.com/materialsintelligence/
  mat2vec, MIT licence), as shipped by CBFV 1.1.0 (Kauwe, Falkowski, Wang; github.com/kaaiian/
  CBFV, MIT licence). CrabNet's input; all 118 elements H..Og have a vector, so any formula
  the parser reads is accepted, noble gases included.

Roost's published default is matscholar (Weston et al. 2019), which no installed package
ships; stoichnet's Roost uses mat2vec as well (the same kind of text-mined vector, 200-d).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

import numpy as np

from stoichnet.chem.composition import Composition
from stoichnet.chem.element_tables import element_table
from stoichnet.chem.formula import parse_distinct
from stoichnet.chem.fractions import UnsupportedElementError, unsupported_rows
from stoichnet.chem.grammar import short_repr
from stoichnet.chem.periodic_table import SYMBOLS

EMBEDDINGS: dict[str, str] = {
    "mat2vec": "Tshitoyan et al., Nature 571, 95 (2019) (mat2vec, MIT licence), via CBFV 1.1.0 "
               "(MIT licence)",
}
"""The element embeddings stoichnet reads, and what to cite for each."""

MIN_SET_WIDTH = 8
"""The narrowest set width a set model is built for (see ``set_width``)."""


class ElementEmbedding(NamedTuple):
    """One embedding table, indexed by token id = atomic number.

    name: a key of :data:`EMBEDDINGS`.
    table: (119, d) float64, row Z the vector of element Z, row 0 (padding) zeros; rows
        of elements without a vector are zeros too (never read: such formulas are refused).
    supported: (118,) bool, index Z - 1: whether element Z has a vector.
    """

    name: str
    table: np.ndarray
    supported: np.ndarray


@cache
def element_embedding(name: str = "mat2vec") -> ElementEmbedding:
    """The element embedding ``name`` from CBFV's package data (cached, read-only arrays).

    Raises:
        ValueError: ``name`` is not one of :data:`EMBEDDINGS`.
    """
    if name not in EMBEDDINGS:
        raise ValueError(f"unknown element embedding {name!r}: expected one of "
                         f"{', '.join(EMBEDDINGS)}")
    source = element_table(name)
    supported = source.supported & np.isfinite(source.values).all(axis=1)
    table = np.zeros((len(SYMBOLS) + 1, source.values.shape[1]))
    table[1:][supported] = source.values[supported]
    table.flags.writeable = False
    supported.flags.writeable = False
    return ElementEmbedding(name, table, supported)


class ElementSets(NamedTuple):
    """Formulas as a batch of sets (see the module docstring).

    X: (n_kept, width, 2) the sets of the rows kept, in input order.
    kept: (n_kept,) int64 input positions of those rows.
    errors: input position -> why that row is not in X (errors="collect" only).
    """

    X: np.ndarray
    kept: np.ndarray
    errors: dict[int, str]


def set_width(n_elements: int) -> int:
    """The set width of a model trained on formulas of at most ``n_elements`` elements:
    max(n_elements, :data:`MIN_SET_WIDTH`), so that predicting a formula with a few more
    elements than any training formula still works (a set model's parameters do not
    depend on the width; only the padding does)."""
    return max(int(n_elements), MIN_SET_WIDTH)


def element_sets(
    formulas: Iterable[Composition | str],
    width: int | None = None,
    embedding: str = "mat2vec",
    errors: str = "raise",
    dtype: str = "float32",
) -> ElementSets:
    """Formulas -> the (n, width, 2) set batch of a set model.

    Args:
        formulas: list, array or Series of formula strings or Compositions (each
            distinct one parsed once).
        width: the set width m; None: the most elements of any formula given.
        embedding: the element embedding whose elements are accepted.
        errors: "raise": a formula that does not parse raises FormulaError, one with an
            element without a vector ``UnsupportedElementError``, one with more than
            ``width`` elements ValueError, each naming the rows; "collect": those rows
            are left out of ``X`` and their reasons returned in ``errors``.
        dtype: of X.
    """
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors={errors!r}: expected 'raise' or 'collect'")
    supported = element_embedding(embedding).supported
    parsed = parse_distinct(formulas, errors=errors)
    reasons = dict(parsed.errors)
    sizes = np.diff(parsed.indptr)
    failing, symbols = unsupported_rows(parsed.indptr, parsed.atomic_numbers - 1, supported)
    if width is None:
        width = int(sizes.max(initial=1))
    bad = np.zeros(len(sizes), dtype=bool)
    bad[failing] = True
    wide = sizes > width
    positions = np.flatnonzero(parsed.inverse >= 0)
    of = parsed.inverse[positions]  # each parsed row's distinct formula
    values = parsed.values
    outside = positions[bad[of]].tolist()
    if outside and errors == "raise":
        symbols_of = dict(zip(failing.tolist(), symbols, strict=True))
        raise UnsupportedElementError(
            np.array(outside), values[outside].tolist(),
            [symbols_of[parsed.inverse[p]] for p in outside], int(supported.sum()))
    too_wide = positions[wide[of] & ~bad[of]].tolist()
    if too_wide and errors == "raise":
        shown = "; ".join(f"row {p} {short_repr(values[p])} has {sizes[parsed.inverse[p]]}"
                          for p in too_wide[:5])
        raise ValueError(f"{len(too_wide)} formula(s) have more than {width} elements, the set "
                         f"width of the model: {shown}")
    if outside:
        symbols_of = dict(zip(failing.tolist(), symbols, strict=True))
        reasons |= {p: f"element(s) {', '.join(symbols_of[parsed.inverse[p]])} have no "
                       f"{embedding} vector" for p in outside}
    reasons |= {p: f"{sizes[parsed.inverse[p]]} elements, more than the set width {width}"
                for p in too_wide}
    # the distinct formulas' sets, then one row per kept input row
    usable = ~bad & ~wide
    unique = np.zeros((len(sizes), width, 2), dtype=dtype)
    rows = np.repeat(np.arange(len(sizes)), sizes)
    slots = np.arange(len(rows)) - parsed.indptr[rows]
    keep = usable[rows]
    unique[rows[keep], slots[keep], 0] = parsed.atomic_numbers[keep]
    unique[rows[keep], slots[keep], 1] = (parsed.amounts / parsed.num_atoms[rows])[keep]
    kept = positions[usable[of]].astype(np.int64)
    return ElementSets(unique[parsed.inverse[kept]], kept, dict(sorted(reasons.items())))
