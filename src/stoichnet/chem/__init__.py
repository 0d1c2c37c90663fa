"""Chemistry: the periodic table, formulas -> Composition, feature vectors, datasets."""

from stoichnet.chem.element_tables import PRESETS, ElementTable, element_table
from stoichnet.chem.featurizers import (
    STATS,
    CompositionFeaturizer,
    FeaturizationReport,
    MissingPropertyError,
)
from stoichnet.chem.formula import (
    MAX_FORMULA_LENGTH,
    Composition,
    FormulaError,
    ParsedFormulas,
    parse_formula,
    parse_formulas,
)
from stoichnet.chem.fractions import (
    ELEMNET_ELEMENTS,
    DroppedRows,
    ElementFractions,
    UnsupportedElementError,
    fraction_matrix,
)
from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS, atomic_number

__all__ = [
    "ATOMIC_NUMBERS",
    "ELEMNET_ELEMENTS",
    "MAX_FORMULA_LENGTH",
    "SYMBOLS",
    "Composition",
    "DroppedRows",
    "ElementFractions",
    "FormulaError",
    "ParsedFormulas",
    "UnsupportedElementError",
    "atomic_number",
    "fraction_matrix",
    "parse_formula",
    "parse_formulas",
    "PRESETS",
    "STATS",
    "CompositionFeaturizer",
    "ElementTable",
    "FeaturizationReport",
    "MissingPropertyError",
    "element_table",
]
