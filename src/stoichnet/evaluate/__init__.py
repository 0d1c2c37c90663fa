"""Evaluation: which rows to train and test on (``data``), metrics with bootstrap
intervals, figures, the network-vs-baselines comparison, cross-validation (``cv``: k-fold,
chemical-system, leave-one-element-out and Matbench folds), learning curves
(``learning_curve``), the calibration of predicted uncertainties (``uncertainty``), tuning
studies, looking inside a trained network (``inspect``), model cards (``model_card``) and
the comparison in words (``text``).

>>> from stoichnet.evaluate import compare, load_split, write_comparison  # doctest: +SKIP
>>> split = load_split("CritExam__Ef", subset=2000)
>>> result = compare(split.train, split.val, split.test, epochs=50, unit=split.unit)
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
from stoichnet.evaluate.cv import (
    CVResult,
    corrected_resampled_ttest,
    cross_validate,
    load_rows,
    write_cv,
)
from stoichnet.evaluate.data import Split, load_split, study_data
from stoichnet.evaluate.inspect import InspectionResult, inspect_network, write_inspection
from stoichnet.evaluate.learning_curve import (
    LearningCurve,
    learning_curve,
    pool_and_test,
    write_learning_curve,
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
from stoichnet.evaluate.uncertainty import (
    Recalibration,
    calibration_report,
    fit_recalibration,
)

__all__ = [
    "KNOBS",
    "LearningCurve",
    "CVResult",
    "Comparison",
    "Estimate",
    "InspectionResult",
    "ModelRun",
    "NetworkConfig",
    "Recalibration",
    "Split",
    "StopRequest",
    "StudyData",
    "StudyResult",
    "accuracy",
    "bootstrap_ci",
    "calibration_report",
    "classification_report",
    "compare",
    "corrected_resampled_ttest",
    "cross_validate",
    "detect_task",
    "f1",
    "inspect_network",
    "fit_recalibration",
    "learning_curve",
    "load_network",
    "load_rows",
    "load_split",
    "mae",
    "plots",
    "pool_and_test",
    "predict_formulas",
    "r2",
    "regression_report",
    "rmse",
    "roc_auc",
    "run_study",
    "save_network",
    "study_data",
    "write_comparison",
    "write_cv",
    "write_inspection",
    "write_learning_curve",
]
