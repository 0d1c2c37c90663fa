"""Chemistry: the periodic table, formulas -> Composition, feature vectors, composition
datasets (image datasets such as MNIST are in ``stoichnet.images``)."""

from stoichnet.chem.composition import Composition
from stoichnet.chem.datasets import (
    DATASETS,
    ChecksumError,
    DatasetNotAvailableError,
    get_dataset,
    list_datasets,
    load_dataset,
)
from stoichnet.chem.element_tables import PRESETS, ElementTable, element_table
from stoichnet.chem.featurizers import (
    STATS,
    CompositionFeaturizer,
    FeaturizationReport,
    MissingPropertyError,
)
from stoichnet.chem.formula import ParsedFormulas, parse_formula, parse_formulas
from stoichnet.chem.fractions import (
    ELEMNET_ELEMENTS,
    DroppedRows,
    ElementFractions,
    UnsupportedElementError,
    fraction_matrix,
)
from stoichnet.chem.grammar import MAX_FORMULA_LENGTH, FormulaError
from stoichnet.chem.periodic_table import ATOMIC_NUMBERS, SYMBOLS, atomic_number
from stoichnet.chem.splits import (
    MATBENCH_SEED,
    chemical_system_kfold,
    chemical_system_split,
    chemical_systems,
    kfold_indices,
    leave_element_out,
    matbench_folds,
    train_val_test_split,
)
from stoichnet.chem.tables import (
    DuplicateFormulaError,
    TableError,
    TableReport,
    read_table,
)

__all__ = [
    "ATOMIC_NUMBERS",
    "ELEMNET_ELEMENTS",
    "MATBENCH_SEED",
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
    "DATASETS",
    "ChecksumError",
    "DatasetNotAvailableError",
    "DuplicateFormulaError",
    "TableError",
    "TableReport",
    "chemical_system_kfold",
    "chemical_system_split",
    "chemical_systems",
    "get_dataset",
    "kfold_indices",
    "leave_element_out",
    "list_datasets",
    "load_dataset",
    "matbench_folds",
    "read_table",
    "train_val_test_split",
]
