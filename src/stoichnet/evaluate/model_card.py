"""Model cards: a trained network saved for ``stoichnet predict``.

``save_network`` writes the engine's model file plus a JSON "model card" next to it
(task, class labels, how formulas become its input, how dropout behaves at prediction,
the target standardisation, the data it was trained on);
``load_network`` and ``predict_formulas`` use both, reporting bad formulas per row and
still predicting the good ones.

A regressor with an uncertainty (an aleatoric head, Monte-Carlo dropout, or a deep
ensemble, whose members all go into one ensemble file, ``nn.io.save_models``) predicts a
sigma too; its card may hold the ``recalibration`` fitted on the validation rows
(:mod:`stoichnet.evaluate.uncertainty`) and the ``domain`` of its training data
(:mod:`stoichnet.evaluate.domain`), which ``predict_formulas`` apply;
``uncertainty_card`` computes both. Both files are written atomically
(:mod:`stoichnet.util.files`) and get the umask's mode.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stoichnet import __version__
from stoichnet.chem import ElementFractions, parse_formulas
from stoichnet.chem.element_sets import element_sets
from stoichnet.evaluate.domain import Domain, fit_domain
from stoichnet.evaluate.uncertainty import Recalibration, calibration_report, fit_recalibration
from stoichnet.models.distributions import from_passes, mixture
from stoichnet.models.uncertainty import predict_dist, uncertainty_kinds
from stoichnet.nn import ModelFileError, Sequential, load_models, save_model, save_models
from stoichnet.util.files import atomic_file, check_output_file

INTERVAL = 0.95
"""The central interval whose bounds ``predict_formulas`` writes."""

FEATURIZATIONS = ("element_fractions", "element_sets")
"""How a card's network reads formulas (its ``"featurization"``): ElemNet's 86 element
fractions (:class:`~stoichnet.chem.ElementFractions`; cards without the entry, written
before the set models, mean this) or sets of elements (:mod:`stoichnet.chem.element_sets`,
Roost and CrabNet; the card's ``"embedding"`` names the element vectors)."""


def card_path(model_path: str | os.PathLike) -> Path:
    """The model card (JSON) that goes with a model file: ``model.npz`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")


def save_network(estimator, path: str | os.PathLike, info: dict, overwrite: bool = False) -> Path:
    """Write a fitted formula estimator's network to ``path`` and its model card next to it.

    Args:
        estimator: a fitted ElemNet, Roost or CrabNet regressor or classifier, or a
            ``DeepEnsembleRegressor`` of ElemNet regressors (all members in one file).
        path: the model file, e.g. ``model.npz``.
        info: extra JSON-serialisable facts for the card (dataset, unit, test metrics).
    Returns the card's path. Both files are written under temporary names first; an
    existing one is refused unless ``overwrite``.
    """
    card = card_path(path)
    if card == Path(path):
        raise ValueError(f"model file {str(path)!r} must not end in .json")
    check_output_file(card, overwrite)
    members = getattr(estimator, "estimators_", [estimator])
    settings = members[0].settings_
    content = {
        "stoichnet": __version__,
        "task": "classification" if hasattr(estimator, "classes_") else "regression",
        "classes": np.asarray(getattr(estimator, "classes_", [])).tolist(),
        "featurization": FEATURIZATIONS[hasattr(members[0], "set_width_")],
        "inference_dropout": settings["inference_dropout"],
        "mc_samples": settings["mc_samples"],
        "seed": members[0].predict_seed_,
        "seeds": [member.predict_seed_ for member in members],
        "uncertainty": [] if hasattr(estimator, "classes_") else list(
            uncertainty_kinds(estimator)),
        # already folded into the output layer: the model file predicts in the target's unit
        "target_standardization": None if hasattr(estimator, "classes_") else {
            "mean": members[0].target_mean_, "std": members[0].target_scale_,
            "folded_into_output_layer": True},
        "hyperparameters": {k: v for k, v in settings.items() if k != "verbose"},
        **info,
    }
    if len(members) > 1:  # atomic themselves
        save_models([member.model_ for member in members], path, overwrite=overwrite)
    else:
        save_model(members[0].model_, path, overwrite=overwrite)
    with atomic_file(card, overwrite) as tmp:
        tmp.write_text(json.dumps(content, indent=2, default=str))
    return card


def uncertainty_card(net, split, seed: int, method: str = "isotonic") -> dict:
    """The model-card entries of a fitted regressor ``net`` (``stoichnet train``'s, and
    the shipped networks'): ``domain``, the domain of its training data, and, when it has
    an uncertainty, ``recalibration`` (``method``, fitted on the validation rows) and
    ``calibration_test``, the test rows' calibration raw and recalibrated.

    Args:
        split: a :class:`~stoichnet.evaluate.data.Split` (train, val and optional test
            frames with ``formula`` and ``target``).
        seed: seed of the domain's sample of training formulas.
    """
    card = {"domain": fit_domain(split.train["formula"], split.val["formula"],
                                 seed=seed).to_dict()}
    if not uncertainty_kinds(net):
        return card
    recal = fit_recalibration(split.val["target"].to_numpy(),
                              *predict_dist(net, split.val["formula"]), method)
    card["recalibration"] = recal.to_dict()
    if split.test is not None:
        y = split.test["target"].to_numpy()
        mean, sigma = predict_dist(net, split.test["formula"])
        card["calibration_test"] = {
            "raw": calibration_report(y, mean, sigma),
            "recalibrated": calibration_report(y, mean, sigma, recal)}
    return card


def load_network(path: str | os.PathLike) -> tuple[Sequential | list[Sequential], dict]:
    """The network in ``path`` (a list of networks for an ensemble file) and its model card.

    Raises:
        ModelFileError: the model file is damaged or foreign, or its card is missing or
            unreadable.
    """
    models = load_models(path)
    model = models[0] if len(models) == 1 else models
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
    if len(info.get("seeds", [None])) != len(models):
        raise ModelFileError(f"model card {str(card)!r} lists {len(info['seeds'])} member "
                             f"seed(s) for the {len(models)} network(s) of {str(path)!r}")
    featurization = info.setdefault("featurization", FEATURIZATIONS[0])
    if featurization not in FEATURIZATIONS:
        raise ModelFileError(f"model card {str(card)!r} names featurization {featurization!r}, "
                             f"not one of {', '.join(FEATURIZATIONS)}")
    return model, info


def _first_line(message: str) -> str:
    """A per-row error message without its "row N: " prefix and its caret lines."""
    return message.splitlines()[0].split(": ", 1)[-1]


def _element_sets_input(model: Sequential, info: dict, formulas: list) -> tuple:
    """(X (n_good, m, 2), good positions, errors) of a set model's formulas."""
    sets = element_sets(formulas, width=model.input_shape[0],
                        embedding=info["hyperparameters"]["embedding"], errors="collect",
                        dtype=model.dtype)
    return sets.X, sets.kept, {row: _first_line(message) for row, message in sets.errors.items()}


def _element_fractions_input(model: Sequential, formulas: list) -> tuple:
    """(X (n_good, 86), good positions, errors) of an ElemNet network's formulas."""
    parsed = parse_formulas(formulas, errors="collect")
    errors = {row: _first_line(message) for row, message in parsed.errors.items()}
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
    return X, good, errors


def has_uncertainty(info: dict) -> bool:
    """Whether the network of a model card predicts a sigma."""
    return bool(info.get("uncertainty"))


def _distribution(members: list[Sequential], info: dict, X: np.ndarray):
    """(mean, sigma) (n,) of the networks' predictive distribution (raw sigma)."""
    means, sigmas = [], []
    for net, seed in zip(members, info.get("seeds", [info["seed"]]), strict=True):
        if info["inference_dropout"] == "mc":
            passes = net.predict_passes(X, info["mc_samples"], seed=seed)
        else:
            passes = net.predict(X)[None]
        mean, epistemic, aleatoric = from_passes(passes, net.loss.name if net.loss else "")
        means.append(mean)
        sigmas.append(np.hypot(epistemic, aleatoric))
    mean, epistemic, aleatoric = mixture(means, sigmas)
    return mean, np.hypot(epistemic, aleatoric)


def predict_formulas(
    model: Sequential | list[Sequential], info: dict, formulas: Sequence[str],
    uncertainty: bool | None = None,
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Predict each formula that can be predicted; say why the others cannot.

    Args:
        model, info: from :func:`load_network`.
        formulas: (n,) formula strings.
        uncertainty: add the predicted uncertainty (None: when the model has one; True
            for a model without one raises ValueError).
    Returns:
        (frame, errors): frame has one row per predicted formula, columns ``position``
        (0-based input position), ``formula`` and ``prediction`` (regression, in the
        target's unit; with an uncertainty also ``sigma``, recalibrated when the card
        holds a recalibration, and the bounds ``low 95%`` / ``high 95%`` of the central
        95% interval) or ``label`` and ``p(<class>)`` per class (classification); with
        a ``domain`` in the card, ``domain``: "" or why the formula lies outside what the
        model has seen. errors maps each other position to the reason.
    """
    if uncertainty is None:
        uncertainty = has_uncertainty(info)
    elif uncertainty and not has_uncertainty(info):
        raise ValueError(
            "this model has no uncertainty (its card lists none): train it with "
            "`stoichnet train --ensemble K` or `--loss gaussian_nll` to get one")
    members = [model] if isinstance(model, Sequential) else list(model)
    model = members[0]
    formulas = list(formulas)
    if info.get("featurization", FEATURIZATIONS[0]) == "element_sets":
        X, good, errors = _element_sets_input(model, info, formulas)
    else:
        X, good, errors = _element_fractions_input(model, formulas)
    frame = pd.DataFrame({"position": good, "formula": [formulas[i] for i in good]})
    if info["task"] == "regression":
        mean, sigma = _distribution(members, info, X) if len(good) else (np.zeros(0),) * 2
        frame["prediction"] = mean
        if uncertainty:
            recal = Recalibration.from_dict(info.get("recalibration") or {"method": "none"})
            frame["sigma"] = recal.sigma(sigma)
            frame[f"low {INTERVAL:.0%}"], frame[f"high {INTERVAL:.0%}"] = recal.interval(
                mean, sigma, INTERVAL)
        if info.get("domain"):
            domain = Domain.from_dict(info["domain"])
            frame["domain"] = domain.check(frame["formula"]) if len(good) else []
    else:
        if len(good) and info["inference_dropout"] == "mc":
            out = model.predict(X, mc_samples=info["mc_samples"],
                                seed=info["seed"]).astype(np.float64)
        elif len(good):
            out = model.predict(X).astype(np.float64)
        else:
            out = np.zeros((0, model.output_shape[0]))
        classes = np.asarray(info["classes"])
        proba = np.column_stack([1.0 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out
        frame["label"] = classes[proba.argmax(axis=1)] if len(good) else classes[:0]
        for j, label in enumerate(classes):
            frame[f"p({label})"] = proba[:, j]
    return frame, dict(sorted(errors.items()))
