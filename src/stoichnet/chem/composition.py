"""``Composition``: a parsed formula as an immutable mapping element symbol -> amount.

``total_atoms`` is the one definition of a composition's number of atoms, shared by the
Composition itself and by every formula reader (``grammar``, ``formula``), so fractions
never depend on which reader produced the amounts.
"""

import functools
import math
import operator
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from fractions import Fraction

from stoichnet.chem.periodic_table import ATOMIC_NUMBERS

__all__ = ["Composition", "total_atoms"]

_INF = math.inf


class Composition(Mapping[str, float]):
    """An immutable, hashable mapping element symbol -> amount (atoms per formula unit).

    Elements keep the order of their first appearance in the formula. Amounts are
    finite positive floats; two compositions are equal when they have the same
    elements with exactly the same amounts (``Composition`` also compares equal to a
    plain mapping with those items).

    >>> c = Composition({"Fe": 2, "O": 3})
    >>> c["Fe"], c.num_atoms, c.fractions()["O"]
    (2.0, 5.0, 0.6)
    """

    __slots__ = ("_amounts", "_num_atoms", "_hash")

    def __init__(self, amounts: Mapping[str, float] | Iterable[tuple[str, float]]):
        """Build from element -> amount pairs (use ``parse_formula`` for text).

        Raises ValueError for an unknown symbol, a repeated element, an amount that is
        not a finite number > 0, or no elements at all.
        """
        items = amounts.items() if isinstance(amounts, Mapping) else amounts
        checked: dict[str, float] = {}
        for symbol, amount in items:
            if symbol not in ATOMIC_NUMBERS:
                raise ValueError(f"unknown element symbol {symbol!r}: expected one of H..Og")
            if symbol in checked:
                raise ValueError(f"element {symbol!r} is given twice")
            try:
                value = float(amount)
            except (TypeError, ValueError):
                value = math.nan
            if not 0.0 < value < _INF:
                raise ValueError(f"amount of {symbol} is {amount!r}: expected a finite number > 0")
            checked[symbol] = value
        if not checked:
            raise ValueError("a Composition needs at least one element")
        self._amounts = checked
        self._num_atoms = total_atoms(checked.values())
        if self._num_atoms == _INF:
            raise ValueError(f"the total number of atoms overflows: {checked}")
        self._hash = None

    @classmethod
    def from_parsed(cls, amounts: dict[str, float], num_atoms: float) -> "Composition":
        """Wrap amounts a formula reader has already validated: no copy, no checks.

        amounts: element symbol -> finite amount > 0, in order of first appearance; the
            dict becomes the Composition's own, so the caller must not change it.
        num_atoms: ``total_atoms(amounts.values())``, finite.
        For the readers of this package; build from untrusted pairs with ``Composition``.
        """
        self = object.__new__(cls)
        self._amounts = amounts
        self._num_atoms = num_atoms
        self._hash = None
        return self

    def __getitem__(self, symbol: str) -> float:
        return self._amounts[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._amounts)

    def __len__(self) -> int:
        return len(self._amounts)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._amounts

    # Read-only views of the underlying dict: much faster than Mapping's generic ones.
    def keys(self) -> KeysView[str]:
        return self._amounts.keys()

    def values(self) -> ValuesView[float]:
        return self._amounts.values()

    def items(self) -> ItemsView[str, float]:
        return self._amounts.items()

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._amounts.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Composition):
            return self._amounts == other._amounts
        if isinstance(other, Mapping):
            return self._amounts == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Composition({self.formula!r})"

    def __str__(self) -> str:
        return self.formula

    def __reduce__(self):
        return (type(self), (self._amounts,))

    @property
    def num_atoms(self) -> float:
        """Total number of atoms per formula unit (sum of the amounts)."""
        return self._num_atoms

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols in order of first appearance."""
        return tuple(self._amounts)

    @property
    def formula(self) -> str:
        """The composition written out, amounts of 1 omitted: "Fe2O3", "Al0.5Ni0.5".

        ``parse_formula(c.formula) == c`` holds exactly (amounts are written with
        ``repr``, which round-trips floats).
        """
        return "".join(symbol + _format_amount(a) for symbol, a in self._amounts.items())

    def fractions(self) -> dict[str, float]:
        """Atomic fractions element -> amount / num_atoms (they sum to 1)."""
        total = self._num_atoms
        return {symbol: amount / total for symbol, amount in self._amounts.items()}

    def reduced_formula(self) -> str:
        """The formula in its smallest whole-number ratio, elements in order of appearance.

        Amounts written as decimals are read exactly (0.05 is 1/20), so "Fe4O6" ->
        "Fe2O3", "Al0.5Ni0.5" -> "AlNi" and "Li0.05Fe0.95PO4" -> "LiFe19P20O80". When
        no ratio with amounts up to 10**6 exists (e.g. amounts that are products of
        inexact decimals), the amounts are divided by the smallest one instead.
        """
        exact = [Fraction(repr(a)) for a in self._amounts.values()]
        denominator = math.lcm(*(f.denominator for f in exact))
        integers = [int(f * denominator) for f in exact]
        divisor = math.gcd(*integers)
        reduced = [i // divisor for i in integers]
        if max(reduced) <= 10**6:
            amounts = [float(i) for i in reduced]
        else:
            smallest = min(self._amounts.values())
            amounts = [a / smallest for a in self._amounts.values()]
        return "".join(s + _format_amount(a) for s, a in zip(self._amounts, amounts, strict=True))


def total_atoms(amounts: Iterable[float]) -> float:
    """The left-to-right float sum of ``amounts``: the one definition of ``num_atoms``.

    Not ``sum`` (compensated since Python 3.12) nor numpy's reductions (pairwise): the
    batch reader (``formula.parse_distinct``) adds in this same order, so every reader
    gives the same total.
    """
    return functools.reduce(operator.add, amounts, 0.0)


def _format_amount(amount: float) -> str:
    if amount == 1.0:
        return ""
    if amount.is_integer() and amount < 1e16:  # larger ones read better as 1e+20
        return str(int(amount))
    return repr(amount)


