"""Figures of predictions, training curves and errors.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (no global
figure state, nothing shown); the caller saves it (``fig.savefig("parity.png")``).
Models are passed as mappings ``{model name: values}`` so one figure compares them
side by side, in the mapping's order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.metrics import ConfusionMatrixDisplay, roc_auc_score, roc_curve

from stoichnet.util.checks import check_int

from ..chem.periodic_table import SYMBOLS, atomic_number
from .uncertainty import area_from_levels, coverage_curve, levels, standardized_errors

_PANEL = 4.0  # inches per side-by-side panel


def _target(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {y.shape}")
    return y


def _per_model(name: str, values: Mapping, n: int, ndim: tuple[int, ...] = (1,)) -> dict:
    if not isinstance(values, Mapping) or not values:
        raise TypeError(
            f"{name} must be a non-empty mapping {{model name: array}}, got {type(values).__name__}"
        )
    out = {}
    for model, v in values.items():
        array = np.asarray(v)
        if array.ndim not in ndim or len(array) != n:
            raise ValueError(
                f"{name}[{model!r}] has shape {array.shape}; expected {n} rows like y_true"
            )
        out[str(model)] = array
    return out


def _panels(k: int, height: float = _PANEL) -> tuple[Figure, list]:
    fig = Figure(figsize=(_PANEL * k, height), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    return fig, list(axes)


def parity_plots(y_true, predictions: Mapping, *, unit: str = "", target: str = "target") -> Figure:
    """Predicted vs true value, one panel per model, same axis limits, with the y = x line
    and the MAE in each panel.

    Args:
        y_true: (n_samples,) true targets.
        predictions: {model name: (n_samples,) predictions}.
        unit: target unit for the axis labels, e.g. "eV/atom".
        target: target name for the axis labels.
    """
    y = _target(y_true).astype(float)
    preds = _per_model("predictions", predictions, len(y))
    lo = min(y.min(), *(p.min() for p in preds.values()))
    hi = max(y.max(), *(p.max() for p in preds.values()))
    pad = 0.03 * (hi - lo or 1.0)
    suffix = f" ({unit})" if unit else ""
    fig, axes = _panels(len(preds))
    for ax, (model, p) in zip(axes, preds.items(), strict=True):
        ax.scatter(y, p, s=4, alpha=0.4, linewidths=0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=1)
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), aspect="equal")
        ax.set(title=model, xlabel=f"true {target}{suffix}", ylabel=f"predicted {target}{suffix}")
        mae = float(np.mean(np.abs(p - y)))
        ax.text(0.04, 0.96, f"MAE = {mae:.4g}{suffix}", transform=ax.transAxes, va="top")
    return fig


def residual_histograms(y_true, predictions: Mapping, *, unit: str = "", bins: int = 50) -> Figure:
    """Histogram of residuals (prediction - truth), one panel per model, shared bins.

    Args:
        y_true: (n_samples,) true targets.
        predictions: {model name: (n_samples,) predictions}.
        unit: target unit for the axis label.
        bins: number of bins over the range of all residuals.
    """
    y = _target(y_true).astype(float)
    residuals = {m: p - y for m, p in _per_model("predictions", predictions, len(y)).items()}
    bins = check_int("bins", bins, 1)
    edges = np.histogram_bin_edges(np.concatenate(list(residuals.values())), bins=bins)
    fig, axes = _panels(len(residuals), height=3.0)
    for ax, (model, r) in zip(axes, residuals.items(), strict=True):
        ax.hist(r, bins=edges)
        ax.axvline(0.0, color="black", lw=1)
        ax.set(title=model, xlabel=f"prediction - truth{f' ({unit})' if unit else ''}")
        ax.set_ylabel("rows")
    return fig


def _history_dict(name, history) -> dict[str, Sequence[float]]:
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping):
        raise TypeError(
            f"histories[{name!r}] must be a History or a mapping of per-epoch lists, "
            f"got {type(history).__name__}"
        )
    return logs


def learning_curves(
    histories: Mapping, *, metric: str = "loss", ylabel: str | None = None
) -> Figure:
    """Training (dashed) and validation (solid) ``metric`` per epoch, one line pair per run.

    Args:
        histories: {run name: ``History`` from ``Sequential.fit`` or a dict such as
            ``{"loss": [...], "val_loss": [...]}``}.
        metric: the key to plot; its validation counterpart is ``"val_" + metric``.
        ylabel: axis label (default: the metric name).
    """
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("histories must be a non-empty mapping {run name: History}")
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for i, (run, history) in enumerate(histories.items()):
        logs = _history_dict(run, history)
        keys = [k for k in (metric, f"val_{metric}") if k in logs]
        if not keys:
            raise ValueError(
                f"histories[{run!r}] has no {metric!r} or 'val_{metric}'; it has {sorted(logs)}"
            )
        for key in keys:
            values = np.asarray(logs[key], dtype=float)
            epochs = np.arange(1, len(values) + 1)
            dashed = not key.startswith("val_")
            label = f"{run} ({'train' if dashed else 'validation'})"
            ax.plot(epochs, values, color=f"C{i}", ls="--" if dashed else "-", label=label)
    ax.set(xlabel="epoch", ylabel=ylabel or metric)
    ax.legend(fontsize="small")
    return fig


def metric_vs_value(
    values: Sequence,
    scores: Sequence[float],
    *,
    reference: Mapping[str, float] | None = None,
    xlabel: str = "value",
    ylabel: str = "test MAE",
    errors: Sequence[tuple[float, float]] | None = None,
) -> Figure:
    """A score per value of a tuning knob (e.g. test MAE vs depth), optionally with
    (low, high) intervals and horizontal reference lines (e.g. the random forest's MAE).

    Numeric ``values`` are placed on a numeric axis, anything else (optimizer names) at
    equal spacing with the values as tick labels.
    """
    scores = np.asarray(scores, dtype=float)
    if len(values) == 0 or len(values) != len(scores):
        raise ValueError(
            f"values and scores must be non-empty and equally long, got {len(values)} and {len(scores)}"
        )
    numeric = all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values
    )
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    if errors is not None:
        bounds = np.asarray(errors, dtype=float)
        if bounds.shape != (len(scores), 2):
            raise ValueError(f"errors must have shape ({len(scores)}, 2), got {bounds.shape}")
        yerr = np.abs(np.vstack([scores - bounds[:, 0], bounds[:, 1] - scores]))
        ax.errorbar(x, scores, yerr=yerr, marker="o", capsize=3, label="stoichnet")
    else:
        ax.plot(x, scores, marker="o", label="stoichnet")
    for i, (name, level) in enumerate((reference or {}).items()):
        ax.axhline(level, color=f"C{i + 1}", ls="--", label=name)
    if not numeric:
        ax.set_xticks(x, [str(v) for v in values])
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize="small")
    return fig


def _table_position(z: int) -> tuple[int, int]:
    """(row, column) of element Z in the 18-column table; La-Lu and Ac-Lr go to rows
    8 and 9 below the main table, as printed periodic tables do."""
    if 57 <= z <= 71 or 89 <= z <= 103:
        return (8 if z <= 71 else 9), 2 + (z - (57 if z <= 71 else 89))
    starts = [1, 3, 11, 19, 37, 55, 87]  # first Z of periods 1..7
    period = max(i for i, s in enumerate(starts) if s <= z)
    offset = z - starts[period]
    if period == 0:
        return 0, 0 if z == 1 else 17
    if period in (1, 2):
        return period, offset if offset < 2 else offset + 10
    if period >= 5 and offset >= 3:  # after Ba/Ra, the f-block is drawn separately
        offset -= 14
    return period, offset


def periodic_table_heatmap(
    values: Mapping[str, float], *, label: str = "MAE", cmap: str = "viridis"
) -> Figure:
    """Periodic table coloured by one value per element (e.g. the MAE of formulas that
    contain it); elements without a value are grey.

    Args:
        values: {element symbol: value} (a dict, or a pandas Series indexed by symbol
            such as ``metrics.error_by_element(...)["mae"]``).
        label: colour-bar label, e.g. "MAE (eV/atom)".
        cmap: matplotlib colour-map name.
    """
    if not hasattr(values, "items") or len(values) == 0:
        raise TypeError("values must be a non-empty mapping {element symbol: value}")
    numbers = {atomic_number(symbol): float(v) for symbol, v in values.items()}
    finite = [v for v in numbers.values() if np.isfinite(v)]
    if not finite:
        raise ValueError("values has no finite value to colour")
    norm = Normalize(vmin=min(finite), vmax=max(finite))
    fig = Figure(figsize=(13.0, 7.0), layout="constrained")
    ax = fig.subplots()
    mappable = ScalarMappable(norm, cmap)
    fig.colorbar(mappable, ax=ax, label=label, shrink=0.7)
    for z in range(1, 119):
        row, col = _table_position(z)
        y = row - (0.5 if row >= 8 else 0.0)  # a half-row gap above the f-block
        value = numbers.get(z, np.nan)
        face = mappable.to_rgba(value) if np.isfinite(value) else (0.88, 0.88, 0.88, 1.0)
        ax.add_patch(Rectangle((col, y), 0.94, 0.94, facecolor=face, edgecolor="white"))
        dark = 0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2] < 0.5
        ax.text(
            col + 0.47,
            y + 0.47,
            SYMBOLS[z - 1],
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )
    ax.set(xlim=(-0.1, 18.0), ylim=(9.6, -0.1), aspect="equal")
    ax.set_axis_off()
    return fig


def _binary_score(model: str, score: np.ndarray) -> np.ndarray:
    if score.ndim == 2 and score.shape[1] == 2:
        return score[:, 1]
    if score.ndim == 1:
        return score
    raise ValueError(
        f"scores[{model!r}] has shape {score.shape}: ROC curves need the positive class's "
        "score, (n_samples,) or (n_samples, 2)"
    )


def roc_curves(y_true, scores: Mapping) -> Figure:
    """ROC curves of binary classifiers on one axes, with the ROC-AUC in the legend.

    Args:
        y_true: (n_samples,) labels of two classes; the larger label is the positive one.
        scores: {model name: (n_samples,) positive-class score, or (n_samples, 2)
            ``predict_proba`` output}.
    """
    y = _target(y_true)
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"ROC curves need exactly two classes in y_true, got {classes.tolist()}")
    models = _per_model("scores", scores, len(y), ndim=(1, 2))
    fig = Figure(figsize=(5.0, 5.0), layout="constrained")
    ax = fig.subplots()
    for model, score in models.items():
        s = _binary_score(model, score.astype(float))
        fpr, tpr, _ = roc_curve(y, s, pos_label=classes[1])
        ax.plot(fpr, tpr, label=f"{model} (AUC = {roc_auc_score(y == classes[1], s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", aspect="equal")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def confusion_matrices(y_true, predictions: Mapping, *, labels=None) -> Figure:
    """Confusion matrix (rows: true label, columns: predicted label) per model, side by side.

    Args:
        y_true: (n_samples,) labels.
        predictions: {model name: (n_samples,) predicted labels}.
        labels: label order of rows and columns (default: sorted labels seen).
    """
    y = _target(y_true)
    preds = _per_model("predictions", predictions, len(y))
    if labels is None:
        labels = np.unique(np.concatenate([y, *preds.values()]))
    fig, axes = _panels(len(preds))
    for ax, (model, p) in zip(axes, preds.items(), strict=True):
        ConfusionMatrixDisplay.from_predictions(y, p, labels=labels, ax=ax, colorbar=False)
        ax.set_title(model)
    return fig


def paired_scores(panels: Mapping[str, Mapping[str, Sequence[float]]], *,
                  units: Mapping[str, str] | None = None, title: str | None = None) -> Figure:
    """Per-fold scores of several models, one panel per metric: each fold is a line joining
    its models' scores (so a pair that crosses the others shows at a glance), each model's
    mean a black bar.

    Args:
        panels: {metric: {model: (n_folds,) scores in fold order}}; every model of a panel
            has the same folds.
        units: {metric: suffix for its axis label, e.g. " (eV/atom)"}.
        title: the figure's title.
    """
    if not isinstance(panels, Mapping) or not panels:
        raise TypeError("panels must be a non-empty mapping {metric: {model: scores}}")
    fig, axes = _panels(len(panels))
    for ax, (metric, scores) in zip(axes, panels.items(), strict=True):
        models = list(scores)
        values = np.array([np.asarray(scores[m], dtype=float) for m in models])
        if values.ndim != 2 or values.shape[1] == 0:
            raise ValueError(f"panels[{metric!r}]: every model needs the same folds, got "
                             f"{[len(np.atleast_1d(scores[m])) for m in models]}")
        x = np.arange(len(models))
        for fold in values.T:
            ax.plot(x, fold, color="grey", alpha=0.6, marker="o", ms=4, lw=1)
        ax.hlines(values.mean(axis=1), x - 0.2, x + 0.2, color="black", lw=2, label="mean")
        ax.set_xticks(x, models)
        ax.set_xlim(-0.5, len(models) - 0.5)
        ax.set_ylabel(f"{metric}{(units or {}).get(metric, '')}")
        ax.set_title(f"{metric}, {values.shape[1]} fold(s)")
    if title:
        fig.suptitle(title)
    return fig


def error_vs_size(sizes: Sequence[int], means: Mapping[str, Sequence[float]],
                  intervals: Mapping[str, Sequence[tuple[float, float]]], *,
                  ylabel: str = "test MAE", crossover: int | None = None) -> Figure:
    """Learning curve: a test score against the training-set size (log x), one line per
    model with its interval as a band, and a vertical line at the crossover size.

    Args:
        sizes: (n_sizes,) training-set sizes.
        means: {model: (n_sizes,) mean score}.
        intervals: {model: (n_sizes, 2) (low, high)} (NaN: no band).
        crossover: the size where the network overtakes the forest, or None.
    """
    x = np.asarray(sizes, dtype=float)
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, (model, mean) in enumerate(_per_model("means", means, len(x)).items()):
        band = np.asarray(intervals[model], dtype=float)
        if band.shape != (len(x), 2):
            raise ValueError(f"intervals[{model!r}] has shape {band.shape}, expected "
                             f"({len(x)}, 2)")
        ax.plot(x, mean, marker="o", color=f"C{i}", label=model)
        ax.fill_between(x, band[:, 0], band[:, 1], color=f"C{i}", alpha=0.2, lw=0)
    if crossover is not None:
        ax.axvline(crossover, color="black", ls=":", label=f"crossover ({crossover:,})")
    ax.set_xscale("log")
    ax.set(xlabel="training rows", ylabel=ylabel)
    ax.legend(fontsize="small")
    return fig


def layer_profiles(runs: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]) -> Figure:
    """Training diagnostics against depth, one line per run: each layer's gradient norm in
    the first and in the last epoch (log scale: vanishing gradients fall towards the first
    layer), its weight norm and its fraction of dead units after the last epoch.

    Args:
        runs: {run name: {layer name: {"grad_norm", "weight_norm", "dead_fraction": one
            value per epoch}}} with the layers in order (``stoichnet.nn.layer_history``
            of a History recorded with ``fit(record="layers")``).
    """
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError("runs must be a non-empty mapping {run name: {layer: {stat: values}}}")
    panels = [("grad_norm", 0, "gradient norm, first epoch"),
              ("grad_norm", -1, "gradient norm, last epoch"),
              ("weight_norm", -1, "weight norm, last epoch"),
              ("dead_fraction", -1, "dead units, last epoch")]
    fig = Figure(figsize=(2 * _PANEL + 1, 2 * _PANEL - 0.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for i, (run, layers) in enumerate(runs.items()):
        depth = np.arange(1, len(layers) + 1)
        for ax, (stat, epoch, title) in zip(axes, panels, strict=True):
            values = [stats[stat][epoch] if stat in stats else np.nan for stats in layers.values()]
            ax.plot(depth, values, marker="o", ms=3, color=f"C{i}", label=run)
            ax.set(title=title, xlabel="layer (1 = first)")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[3].set_ylim(-0.03, 1.03)
    axes[0].legend(fontsize="small")
    return fig


def projection_grid(points: Mapping[str, np.ndarray], color, *, label: str,
                    categorical: bool = False, axis: str = "PC") -> Figure:
    """2-D projections side by side (one panel per layer), every point coloured the same
    way in each panel: by a number (a colour bar) or by a category (a legend).

    Args:
        points: {panel title: (n, 2) coordinates}, the same n points in each.
        color: (n,) numbers, or labels when ``categorical``.
        label: what ``color`` is, for the colour bar or legend title.
        axis: axis name prefix ("PC" for PCA: "PC1", "PC2").
    """
    if not isinstance(points, Mapping) or not points:
        raise TypeError("points must be a non-empty mapping {title: (n, 2) array}")
    color = np.asarray(color)
    cols = min(len(points), 6)
    rows = -(-len(points) // cols)
    # a fixed layout: the constrained one takes longer than drawing the thousands of points
    fig = Figure(figsize=(2.6 * cols + 1.6, 2.6 * rows))
    fig.subplots_adjust(left=0.04, right=0.86, bottom=0.06, top=0.94, wspace=0.3, hspace=0.45)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    if categorical:
        categories = sorted(set(color.tolist()))
        codes = np.searchsorted(np.array(categories, dtype=object), color.astype(object))
        cmap = "tab20" if len(categories) > 10 else "tab10"
        norm = Normalize(-0.5, (20 if len(categories) > 10 else 10) - 0.5)
        values = codes
    else:
        values = color.astype(float)
        cmap, norm = "viridis", Normalize(np.nanmin(values), np.nanmax(values))
    for ax, (title, xy) in zip(axes, points.items(), strict=False):
        xy = np.asarray(xy, dtype=float)
        if xy.shape != (len(color), 2):
            raise ValueError(f"points[{title!r}] has shape {xy.shape}, expected ({len(color)}, 2)")
        ax.scatter(xy[:, 0], xy[:, 1], c=values, cmap=cmap, norm=norm, s=3, alpha=0.6,
                   linewidths=0)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel(f"{axis}1", fontsize="x-small")
        ax.set_ylabel(f"{axis}2", fontsize="x-small")
        ax.tick_params(labelsize="xx-small")
    for ax in axes[len(points):]:
        ax.set_axis_off()
    if categorical:
        mappable = ScalarMappable(norm=norm, cmap=cmap)
        handles = [Rectangle((0, 0), 1, 1, color=mappable.to_rgba(k))
                   for k in range(len(categories))]
        fig.legend(handles, [str(c) for c in categories], title=label, loc="center right",
                   fontsize="x-small", title_fontsize="x-small")
    else:
        bar = fig.add_axes((0.89, 0.15, 0.015, 0.7))
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar, label=label)
    return fig


def probe_curves(layers: Sequence[str], scores: Mapping[str, Sequence[float]], *,
                 ylabel: str = "cross-validated R²") -> Figure:
    """One curve per probed quantity across depth: how well a linear model recovers it
    from each layer's activations.

    Args:
        layers: (n_layers,) names, in order of depth, for the x axis.
        scores: {quantity: (n_layers,) scores}.
    """
    scores = _per_model("scores", scores, len(layers))
    x = np.arange(len(layers))
    fig = Figure(figsize=(max(6.0, 0.45 * len(layers) + 2.5), 4.2), layout="constrained")
    ax = fig.subplots()
    for i, (name, values) in enumerate(scores.items()):
        ax.plot(x, np.asarray(values, dtype=float), marker="o", ms=4, color=f"C{i}", label=name)
    ax.set_xticks(x, list(layers), rotation=60, ha="right", fontsize="x-small")
    ax.set(xlabel="layer", ylabel=ylabel)
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(fontsize="small")
    return fig


def labelled_map(xy: np.ndarray, names: Sequence[str], groups: Sequence[int], *,
                 group_label: str = "group", title: str = "", axis: str = "PC") -> Figure:
    """Points in 2-D, each written as its name (e.g. an element symbol) and coloured by an
    integer group (e.g. the periodic-table group), with a colour bar of the groups."""
    xy = np.asarray(xy, dtype=float)
    groups = np.asarray(groups, dtype=float)
    if xy.shape != (len(names), 2) or groups.shape != (len(names),):
        raise ValueError(f"xy must be ({len(names)}, 2) and groups ({len(names)},), got "
                         f"{xy.shape} and {groups.shape}")
    norm = Normalize(np.nanmin(groups), np.nanmax(groups))
    cmap = "turbo"
    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    ax = fig.subplots()
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    ax.scatter(xy[:, 0], xy[:, 1], c=groups, cmap=cmap, norm=norm, s=12, alpha=0.5)
    for (x, y), name, g in zip(xy, names, groups, strict=True):
        ax.annotate(name, (x, y), fontsize="x-small", color=mappable.to_rgba(g),
                    xytext=(2, 2), textcoords="offset points", fontweight="bold")
    ax.set(xlabel=f"{axis}1", ylabel=f"{axis}2", title=title)
    fig.colorbar(mappable, ax=ax, label=group_label)
    return fig


def _distributions(y_true, distributions: Mapping) -> tuple[np.ndarray, dict]:
    """y as float (n,), and {model: (mean (n,), sigma (n,))} checked."""
    y = _target(y_true).astype(float)
    if not isinstance(distributions, Mapping) or not distributions:
        raise TypeError("distributions must be a non-empty mapping {model name: (mean, sigma)}")
    out = {}
    for model, pair in distributions.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"distributions[{model!r}] must be a pair (mean, sigma)")
        out[str(model)] = tuple(_per_model(f"distributions[{model!r}]", {model: v}, len(y))[
            str(model)].astype(float) for v in pair)
    return y, out


def calibration_curves(y_true, distributions: Mapping, *,
                       recalibrations: Mapping | None = None) -> Figure:
    """Observed vs expected coverage of the central intervals, one line per model (the
    diagonal is perfect calibration), with the miscalibration area in the legend; a
    recalibrated model's curve is drawn dashed beside its raw one.

    Args:
        y_true: (n_samples,) true targets.
        distributions: {model name: (mean, sigma)}, each (n_samples,) in the target's unit.
        recalibrations: {model name: ``uncertainty.Recalibration``} for the models that
            have one (fitted on validation rows).
    """
    y, dists = _distributions(y_true, distributions)
    expected = np.linspace(0, 1, 201)
    fig = Figure(figsize=(5.0, 5.0), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="black", lw=1)
    for i, (model, (mean, sigma)) in enumerate(dists.items()):
        curves = [("raw", levels(y, mean, sigma), "-")]
        recal = (recalibrations or {}).get(model)
        if recal is not None and recal.method != "none":
            z = standardized_errors(y, mean, sigma)
            curves.append((f"{recal.method}-recalibrated", recal.levels(z), "--"))
        for what, values, style in curves:
            ax.plot(expected, coverage_curve(values, expected), color=f"C{i}", ls=style,
                    label=f"{model} {what} (area {area_from_levels(values):.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="expected coverage",
           ylabel="observed coverage", title="central-interval calibration")
    ax.legend(fontsize="small", loc="upper left")
    return fig


def error_vs_sigma(y_true, distributions: Mapping, *, unit: str = "", bins: int = 10) -> Figure:
    """Mean |error| against mean sigma in ``bins`` equally populated sigma bins, one panel
    per model, with the line |error| = sqrt(2/π) sigma that a calibrated Gaussian follows.

    Args:
        y_true: (n_samples,) true targets.
        distributions: {model name: (mean, sigma)}, each (n_samples,).
        unit: the target's unit for the axis labels.
        bins: number of sigma quantile bins (fewer when rows are fewer).
    """
    y, dists = _distributions(y_true, distributions)
    bins = check_int("bins", bins, 1)
    suffix = f" ({unit})" if unit else ""
    fig, axes = _panels(len(dists))
    for ax, (model, (mean, sigma)) in zip(axes, dists.items(), strict=True):
        order = np.argsort(sigma, kind="stable")
        groups = np.array_split(order, min(bins, len(y)))
        s = np.array([sigma[g].mean() for g in groups])
        e = np.array([np.abs(y[g] - mean[g]).mean() for g in groups])
        top = max(s.max(), e.max() / np.sqrt(2 / np.pi)) * 1.05 or 1.0
        ax.plot([0, top], [0, np.sqrt(2 / np.pi) * top], color="black", lw=1,
                label="calibrated Gaussian")
        ax.plot(s, e, marker="o", label="binned rows")
        ax.set(title=model, xlabel=f"mean sigma{suffix}", ylabel=f"mean |error|{suffix}")
        ax.legend(fontsize="small")
    return fig
