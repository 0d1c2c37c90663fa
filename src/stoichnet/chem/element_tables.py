"""Element property tables of the CBFV presets, read from CBFV's installed package data.

Only CBFV's data files are used (``CBFV/element_properties/<preset>.csv``, found with
``importlib.resources``); CBFV's code is never imported. A missing value in a table
stays NaN here: deciding what to do about it is the featurizer's job.
"""

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS

PRESETS: tuple[str, ...] = ("magpie", "oliynyk", "mat2vec", "jarvis", "onehot")
"""The CBFV element property presets stoichnet reads (CBFV's ``random_200`` is left out)."""


@dataclass(frozen=True, eq=False)
class ElementTable:
    """One preset's property table, indexed by atomic number.

    Attributes:
        preset: the preset name, e.g. ``"magpie"``.
        properties: property (column) names, in the order of the CSV file.
        values: (118, n_properties) float64, row ``Z - 1`` holds element Z; NaN where
            the table has no value or no row for that element. Read-only.
        supported: (118,) bool, True for the elements the table has a row for.
    """

    preset: str
    properties: tuple[str, ...]
    values: np.ndarray
    supported: np.ndarray

    @property
    def elements(self) -> tuple[str, ...]:
        """Symbols of the elements the table has a row for, in order of Z."""
        return tuple(s for s, known in zip(SYMBOLS, self.supported, strict=True) if known)

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame: index = supported element symbols, columns = properties."""
        return pd.DataFrame(
            self.values[self.supported], index=list(self.elements), columns=list(self.properties)
        )


@cache
def element_table(preset: str) -> ElementTable:
    """Load a preset's table from CBFV's package data (cached; the arrays are read-only).

    Rows whose ``element`` is not one of the 118 elements (onehot's ``Dummy`` row) are
    not reachable from any formula and are left out; its column stays, as in CBFV.

    Raises:
        ValueError: ``preset`` is not one of ``PRESETS``, or the file names an element twice.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    resource = files("CBFV") / "element_properties" / f"{preset}.csv"
    with resource.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle)
    duplicated = frame["element"][frame["element"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{resource}: elements listed more than once: {duplicated}")
    frame = frame[frame["element"].isin(ATOMIC_NUMBERS)]
    rows = frame["element"].map(ATOMIC_NUMBERS).to_numpy() - 1
    properties = frame.columns.drop("element")
    values = np.full((len(SYMBOLS), len(properties)), np.nan)
    values[rows] = frame[properties].to_numpy(dtype=np.float64)
    supported = np.zeros(len(SYMBOLS), dtype=bool)
    supported[rows] = True
    values.flags.writeable = False
    supported.flags.writeable = False
    return ElementTable(preset, tuple(properties), values, supported)
