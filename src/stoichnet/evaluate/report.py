"""Writing results safely and saying them in words.

Output safety: an existing file, or a non-empty folder, is never written over unless
``overwrite`` is true, and every output is first written under a temporary name in the
same folder and renamed into place once complete, so an interrupted run never leaves a
half-written file under the final name.

Trained networks: ``save_network`` writes the engine's model file plus a JSON "model
card" next to it (task, class labels, how dropout behaves at prediction, the data it was
trained on); ``load_network`` and ``predict_formulas`` use both, reporting bad formulas
per row and still predicting the good ones.

Text: the comparison table and the one-sentence verdict of how the network compares with
the random forest.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from stoichnet import __version__
from stoichnet.chem import ElementFractions, parse_formulas
from stoichnet.evaluate.metrics import Estimate
from stoichnet.nn import ModelFileError, Sequential, load_model, save_model

PARTIAL = ".partial"


def check_output_file(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``; return it as a Path.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {str(path)!r} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {str(path)!r} exists; pass --overwrite to replace it")
    return path


def check_output_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a non-empty folder ``path`` unless ``overwrite``; return it as a Path.

    Raises:
        FileExistsError: ``path`` is a non-empty folder and ``overwrite`` is false.
        NotADirectoryError: ``path`` exists and is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"output folder {str(path)!r} is a file")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {str(path)!r} is not empty; pass --overwrite to write into it"
        )
    return path


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_file(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix); on normal exit it is flushed
    to disk and renamed to ``path``, on an exception it is removed.

    Example::

        with atomic_file("predictions.csv", overwrite=False) as tmp:
            frame.to_csv(tmp, index=False)
    """
    path = check_output_file(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}{PARTIAL}-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder ``<path>.partial``; on normal exit each file written in it
    is renamed into ``path`` (created if needed) and the temporary folder removed.

    Files already in ``path`` that this run does not write are left alone. On an exception
    the temporary folder is kept, so what was written survives under the temporary name,
    and nothing in ``path`` changes.

    Raises:
        FileExistsError: ``path`` is a non-empty folder and ``overwrite`` is false.
    """
    path = check_output_dir(path, overwrite)
    tmp = path.with_name(path.name + PARTIAL)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    path.mkdir(parents=True, exist_ok=True)
    for item in sorted(tmp.rglob("*")):
        if item.is_file():
            _fsync(item)
            target = path / item.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(item, target)
    shutil.rmtree(tmp)


def card_path(model_path: str | os.PathLike) -> Path:
    """The model card (JSON) that goes with a model file: ``model.npz`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")


def save_network(estimator, path: str | os.PathLike, info: dict, overwrite: bool = False) -> Path:
    """Write a fitted ElemNet estimator's network to ``path`` and its model card next to it.

    Args:
        estimator: a fitted ``ElemNetRegressor`` or ``ElemNetClassifier``.
        path: the model file, e.g. ``model.npz``.
        info: extra JSON-serialisable facts for the card (dataset, unit, test metrics).
    Returns the card's path. Both files are written under temporary names first.
    """
    card = card_path(path)
    if card == Path(path):
        raise ValueError(f"model file {str(path)!r} must not end in .json")
    check_output_file(card, overwrite)
    settings = estimator.settings_
    content = {
        "stoichnet": __version__,
        "task": "classification" if hasattr(estimator, "classes_") else "regression",
        "classes": np.asarray(getattr(estimator, "classes_", [])).tolist(),
        "inference_dropout": settings["inference_dropout"],
        "mc_samples": settings["mc_samples"],
        "seed": int(estimator._predict_seed),
        "hyperparameters": {k: v for k, v in settings.items() if k != "verbose"},
        **info,
    }
    with atomic_file(path, overwrite) as tmp:
        save_model(estimator.model_, tmp)
    with atomic_file(card, overwrite) as tmp:
        tmp.write_text(json.dumps(content, indent=2, default=str))
    return card


def load_network(path: str | os.PathLike) -> tuple[Sequential, dict]:
    """The network in ``path`` and its model card.

    Raises:
        ModelFileError: the model file is damaged or foreign, or its card is missing or
            unreadable.
    """
    model = load_model(path)
    card = card_path(path)
    try:
        info = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelFileError(
            f"model card {str(card)!r} (written by `stoichnet train` next to the model) "
            f"cannot be read: {err}"
        ) from None
    if not isinstance(info, dict) or info.get("task") not in ("regression", "classification"):
        raise ModelFileError(f"model card {str(card)!r} does not name a task")
    return model, info


def predict_formulas(
    model: Sequential, info: dict, formulas: Sequence[str]
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Predict each formula that can be predicted; say why the others cannot.

    Args:
        model, info: from :func:`load_network`.
        formulas: (n,) formula strings.
    Returns:
        (frame, errors): frame has one row per predicted formula, columns ``position``
        (0-based input position), ``formula`` and ``prediction`` (regression, in the
        target's unit) or ``label`` and ``p(<class>)`` per class (classification);
        errors maps each other position to the reason.
    """
    formulas = list(formulas)
    parsed = parse_formulas(formulas, errors="collect")
    errors = {row: message.splitlines()[0].split(": ", 1)[-1]
              for row, message in parsed.errors.items()}
    good = np.flatnonzero(parsed.inverse >= 0)
    X = np.zeros((0, model.input_shape[0]), dtype=np.float32)
    if len(good):
        fractions = ElementFractions(on_unsupported="drop")
        with warnings.catch_warnings():  # the dropped rows are returned in ``errors``
            warnings.simplefilter("ignore")
            X = fractions.transform([parsed.compositions[k] for k in parsed.inverse[good]])
        dropped = fractions.dropped_
        for position, symbols in zip(dropped.rows, dropped.unsupported, strict=True):
            errors[int(good[position])] = (
                f"element(s) {', '.join(symbols)} not among the network's "
                f"{model.input_shape[0]} input elements"
            )
        good = good[dropped.kept]
    frame = pd.DataFrame({"position": good, "formula": [formulas[i] for i in good]})
    if len(good):
        if info["inference_dropout"] == "mc":
            out = model.predict(X, mc_samples=info["mc_samples"],
                                seed=info["seed"]).astype(np.float64)
        else:
            out = model.predict(X).astype(np.float64)
    else:
        out = np.zeros((0, model.output_shape[0]))
    if info["task"] == "regression":
        frame["prediction"] = out[:, 0]
    else:
        classes = np.asarray(info["classes"])
        proba = np.column_stack([1.0 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out
        frame["label"] = classes[proba.argmax(axis=1)] if len(good) else classes[:0]
        for j, label in enumerate(classes):
            frame[f"p({label})"] = proba[:, j]
    return frame, dict(sorted(errors.items()))


def format_table(rows: Mapping[str, Mapping[str, object]], columns: list[str]) -> str:
    """Plain-text table, one row per model.

    Args:
        rows: model name -> {column: value}; an :class:`Estimate` prints as
            ``value [low, high]``, a float with 4 significant digits, None as ``-``.
        columns: the column names, in order.
    """

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, Estimate):
            return str(value)
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    header = ["model", *columns]
    body = [[name, *(cell(values.get(c)) for c in columns)] for name, values in rows.items()]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(w) for text, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(
    network: str,
    net: Estimate,
    forest: str,
    rf: Estimate,
    metric: str,
    lower_is_better: bool,
    unit: str = "",
) -> str:
    """One sentence: how much the network improves on the forest on ``metric``, in
    absolute and relative terms, and whether the two confidence intervals overlap."""
    diff = rf.value - net.value if lower_is_better else net.value - rf.value
    relative = abs(diff) / abs(rf.value) * 100 if rf.value else float("nan")
    unit = f" {unit}" if unit else ""
    if diff > 0:
        how = f"improves on the forest ({forest}) by {abs(diff):.4g}{unit} in {metric}"
    elif diff < 0:
        how = f"is worse than the forest ({forest}) by {abs(diff):.4g}{unit} in {metric}"
    else:
        how = f"ties with the forest ({forest}) in {metric}"
    better = "better" if diff > 0 else "worse"
    rel = f"{relative:.1f}% {better}" if diff else "0%"
    overlap = "overlap" if net.overlaps(rf) else "do not overlap"
    pct = f"{round(net.confidence * 100):d}%"
    return (
        f"The network ({network}) {how} ({net.value:.4g} vs {rf.value:.4g}{unit}, {rel}); "
        f"their {pct} confidence intervals {overlap}."
    )
