"""Chemistry: the periodic table, formulas -> Composition, feature vectors, datasets."""

from stoichnet.chem.formula import (
    MAX_FORMULA_LENGTH,
    Composition,
    FormulaError,
    ParsedFormulas,
    parse_formula,
    parse_formulas,
)
from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS, atomic_number

__all__ = [
    "ATOMIC_NUMBERS",
    "MAX_FORMULA_LENGTH",
    "SYMBOLS",
    "Composition",
    "FormulaError",
    "ParsedFormulas",
    "atomic_number",
    "parse_formula",
    "parse_formulas",
]
