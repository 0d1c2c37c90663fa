"""Evaluation: metrics with bootstrap intervals, figures, the network-vs-baselines
comparison, tuning studies and safe result writing.

>>> from stoichnet.evaluate import compare, write_comparison  # doctest: +SKIP
>>> result = compare(train, val, test, epochs=50)  # DataFrames: formula, target
>>> print(result.table()); print(result.verdict())
>>> write_comparison(result, "runs/ef")
"""

from stoichnet.evaluate import plots
from stoichnet.evaluate.compare import (
    Comparison,
    ModelRun,
    StopRequest,
    compare,
    detect_task,
    write_comparison,
)
from stoichnet.evaluate.metrics import (
    Estimate,
    accuracy,
    bootstrap_ci,
    classification_report,
    f1,
    mae,
    r2,
    regression_report,
    rmse,
    roc_auc,
)
from stoichnet.evaluate.model_card import load_network, predict_formulas, save_network
from stoichnet.evaluate.study import (
    KNOBS,
    NetworkConfig,
    StudyData,
    StudyResult,
    run_study,
)

__all__ = [
    "KNOBS",
    "Comparison",
    "Estimate",
    "ModelRun",
    "NetworkConfig",
    "StopRequest",
    "StudyData",
    "StudyResult",
    "accuracy",
    "bootstrap_ci",
    "classification_report",
    "compare",
    "detect_task",
    "f1",
    "load_network",
    "mae",
    "plots",
    "predict_formulas",
    "r2",
    "regression_report",
    "rmse",
    "roc_auc",
    "run_study",
    "save_network",
    "write_comparison",
]
