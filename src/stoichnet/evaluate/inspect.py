"""Looking inside a trained network: do its layers build up an explainable representation?

The lecture asks whether intermediate layers build up, in an explainable way, to the
outcome; the ElemNet paper answered by looking at the activations its layers produce.
``inspect_network`` runs a seeded sample of formulas through a network whose input is
ElemNet's 86 element fractions and, for the input (depth 0) and every layer:

- projects the activations to 2-D (PCA; UMAP with the optional package ``umap-learn``),
  for figures coloured by the target and by chemical labels (the periodic-table group of
  the most electronegative element, whether the formula contains oxygen);
- fits linear probes: the cross-validated R² of a ridge regression (``ridge_loo``, its
  penalty chosen by leave-one-out as scikit-learn's ``RidgeCV``) from the activations
  to the target and to physical descriptors (fraction-weighted Magpie statistics such
  as the mean electronegativity, from ``stoichnet.chem.CompositionFeaturizer``). A
  descriptor that is linear in the fractions (every mean) has R² = 1 at the input; the
  curve shows how much of it the layers keep, and the target's curve how the network
  builds the answer up;
- counts dead units: outputs that are 0 for every sampled formula (dead ReLUs);

and looks at the elements as the network sees them: each layer's activations for every
pure element (fraction 1 of it) and how often an element's nearest neighbour there is in
the same periodic-table group, against chance. ``write_inspection`` writes the JSON, the
CSV summary and the figures.

The network only has to offer ``activations(X, layers=...)`` (``Sequential.activations``)
and ``layers`` with names: a set model with attention plugs in by offering the same.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from stoichnet import __version__
from stoichnet.chem import (
    ATOMIC_NUMBERS,
    ELEMNET_ELEMENTS,
    CompositionFeaturizer,
    ElementFractions,
    element_table,
)
from stoichnet.evaluate import plots
from stoichnet.util.checks import check_choice, check_int
from stoichnet.util.files import atomic_dir

DESCRIPTORS: dict[str, str] = {
    "mean electronegativity": "magpie avg Electronegativity",
    "electronegativity range": "magpie range Electronegativity",
    "mean atomic number": "magpie avg Number",
    "mean valence electrons": "magpie avg NValence",
    "mean covalent radius": "magpie avg CovalentRadius",
}
"""The probed descriptors: name -> column of ``CompositionFeaturizer("magpie")``. The
electronegativity range (max - min) is the one that is not linear in the fractions."""

LABELS: dict[str, str] = {
    "anion_group": "group of the most electronegative element",
    "oxide": "contains oxygen",
}
"""The chemical labels the projections are coloured by: key -> what it is."""

PROJECTIONS: tuple[str, ...] = ("pca", "umap")
RIDGE_ALPHAS = np.logspace(-3, 4, 15)
"""Penalties the probes choose from (leave-one-out on each training fold, per quantity)."""

INPUT = "input"
"""The name of depth 0, the element fractions themselves."""

FILES: tuple[str, ...] = ("inspect.json", "inspect.csv", "probes.png", "elements.png",
                          "projections_target.png",
                          *(f"projections_{key}.png" for key in LABELS))


@dataclass
class InspectionResult:
    """What ``inspect_network`` found.

    Attributes:
        layers: "input", then the inspected layers' names, in order of depth.
        widths: (n_layers,) units per layer (86 for the input).
        dead_units: (n_layers,) outputs that are 0 on every sampled formula (None for the
            input).
        probes, probe_std: DataFrames indexed by layer, one column per probed quantity
            ("target", then the descriptors): cross-validated R², mean and standard
            deviation over the folds.
        projections: {layer: (n, 2) coordinates} of the layers at least 2 units wide.
        projection: "pca" or "umap"; explained_variance: {layer: variance ratio of the two
            principal components} (PCA only).
        target: (n,) the sampled targets; labels: {key of LABELS: (n,) labels};
            formulas: the n sampled formulas.
        elements: one row per input element: symbol, group (periodic-table column, 3 for
            the lanthanides and actinides, Magpie's), x and y (its 2-D PCA position in
            ``element_layer``).
        element_agreement: {layer: fraction of elements whose nearest neighbour in the
            layer's activations is in the same group (equally near neighbours share the
            count)}; element_chance: its expectation for groups shuffled at random, also
            what a layer that maps every element to one vector gets.
        notes: rows dropped and other things a reader should know.
    """

    layers: list[str]
    widths: list[int]
    dead_units: list[int | None]
    probes: pd.DataFrame
    probe_std: pd.DataFrame
    projections: dict[str, np.ndarray]
    projection: str
    explained_variance: dict[str, list[float]]
    target: np.ndarray
    labels: dict[str, np.ndarray]
    formulas: list[str]
    element_layer: str
    elements: pd.DataFrame
    element_agreement: dict[str, float]
    element_chance: float
    folds: int
    seed: int
    target_name: str = "target"
    unit: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> pd.DataFrame:
        """One row per depth: layer, width, dead_units, dead_fraction,
        element_group_agreement and ``r2 <quantity>`` per probed quantity."""
        frame = pd.DataFrame({
            "layer": self.layers,
            "width": self.widths,
            "dead_units": pd.array(self.dead_units, dtype="Int64"),
            "dead_fraction": [None if d is None else d / w
                              for d, w in zip(self.dead_units, self.widths, strict=True)],
            "element_group_agreement": [self.element_agreement.get(name)
                                        for name in self.layers],
        })
        probes = self.probes.add_prefix("r2 ").reset_index(drop=True)
        return pd.concat([frame, probes], axis=1)

    def to_json(self) -> dict:
        """A JSON-serialisable summary (without the per-formula coordinates)."""
        table = self.table().astype(object).where(self.table().notna(), None)
        return {
            "stoichnet": __version__,
            "samples": len(self.formulas),
            "seed": self.seed,
            "folds": self.folds,
            "target": self.target_name,
            "unit": self.unit,
            "projection": self.projection,
            "descriptors": {name: DESCRIPTORS.get(name, name) for name in self.probes.columns},
            "labels": LABELS,
            "layers": table.to_dict(orient="records"),
            "probe_std": {layer: row.to_dict() for layer, row in self.probe_std.iterrows()},
            "explained_variance": self.explained_variance,
            "element_layer": self.element_layer,
            "element_chance": self.element_chance,
            "elements": self.elements.to_dict(orient="records"),
            "notes": self.notes,
            "seconds": self.seconds,
        }

    def projection_figure(self, color: str = "target") -> Figure:
        """Every layer's 2-D projection, coloured by the target or by a key of LABELS."""
        axis = "PC" if self.projection == "pca" else "UMAP"
        titles = {name: name if self.projection != "pca" else
                  f"{name} ({sum(self.explained_variance[name]):.0%})"
                  for name in self.projections}
        points = {titles[name]: xy for name, xy in self.projections.items()}
        if color == "target":
            unit = f" ({self.unit})" if self.unit else ""
            return plots.projection_grid(points, self.target, label=f"{self.target_name}{unit}",
                                         axis=axis)
        check_choice("color", color, ("target", *LABELS))
        return plots.projection_grid(points, self.labels[color], label=LABELS[color],
                                     categorical=True, axis=axis)

    def probe_figure(self) -> Figure:
        """Cross-validated R² of the linear probes across depth, one curve per quantity."""
        names = {"target": f"target ({self.target_name})"} if self.target_name != "target" else {}
        fig = plots.probe_curves(self.layers, {names.get(name, name): self.probes[name].to_numpy()
                                               for name in self.probes.columns})
        fig.axes[0].set_title(f"linear probes ({self.folds}-fold ridge regression, "
                              f"{len(self.formulas):,} formulas)", fontsize="small")
        return fig

    def element_figure(self) -> Figure:
        """The pure elements in ``element_layer``'s activations (PCA), coloured by group."""
        agreement = self.element_agreement[self.element_layer]
        title = (f"elements in {self.element_layer}: nearest neighbour in the same group for "
                 f"{agreement:.0%} (chance {self.element_chance:.0%})")
        return plots.labelled_map(self.elements[["x", "y"]].to_numpy(), self.elements["symbol"],
                                  self.elements["group"], group_label="periodic-table group",
                                  title=title)


def _inspected(model) -> list[str]:
    """The layers worth looking at: those with parameters or an activation (a Dropout or
    Flatten layer repeats its input at inference)."""
    return [layer.name for layer in model.layers
            if layer.n_params or getattr(layer, "activation", None) is not None]


def _sample(formulas: Sequence[str], y, sample: int, seed: int):
    formulas = list(formulas)
    y = np.asarray(y)
    if y.shape != (len(formulas),):
        raise ValueError(f"y must be one target per formula, shape ({len(formulas)},), got "
                         f"{y.shape}")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"inspect probes and colours by a numeric target; y holds {y.dtype} "
                         f"values such as {y.flat[0]!r}")
    notes = []
    if sample < len(formulas):
        keep = np.sort(np.random.default_rng(seed).choice(len(formulas), sample, replace=False))
        notes.append(f"a random {sample:,} of the {len(formulas):,} formulas (seed {seed})")
        formulas, y = [formulas[i] for i in keep], y[keep]
    return formulas, y.astype(np.float64), notes


def _project(A: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, list[float] | None]:
    """(n, 2) coordinates of the rows of A and, for PCA, the two components' share of the
    variance (zeros for a constant layer, where PCA has nothing to show)."""
    if method == "umap":
        import umap  # the optional extra; inspect_network checked it is there

        return umap.UMAP(n_components=2, random_state=seed).fit_transform(A), None
    if not np.ptp(A, axis=0).any():
        return np.zeros((len(A), 2)), [0.0, 0.0]
    pca = PCA(n_components=2, random_state=seed).fit(A)
    return pca.transform(A), [float(v) for v in pca.explained_variance_ratio_]


def ridge_loo(X: np.ndarray, Y: np.ndarray, X_new: np.ndarray,
              alphas: np.ndarray = RIDGE_ALPHAS) -> np.ndarray:
    """Predictions for ``X_new`` (m, p) of a ridge regression with intercept from X (n, p)
    to each column of Y (n, k), each column's penalty chosen from ``alphas`` by its exact
    leave-one-out squared error on (X, Y): what scikit-learn's
    ``RidgeCV(alphas, alpha_per_target=True).fit(X, Y).predict(X_new)`` computes (the
    tests hold it to that), from one eigendecomposition of the centred X^T X (p x p)
    instead of an SVD of X (n x p), several times faster for ElemNet's 1024-unit layers.

    With X^T X = V diag(s) V^T, Q = X V and w = 1 / (s + alpha): fitted = Q diag(w) Q^T y,
    leverage h_i = 1/n + sum_j Q_ij^2 w_j (1/n: the unpenalised intercept), and the
    leave-one-out residual is (y_i - fitted_i) / (1 - h_i).
    """
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - x_mean, Y - y_mean
    s, V = np.linalg.eigh(Xc.T @ Xc)
    s = np.clip(s, 0.0, None)  # rounding can leave tiny negative eigenvalues
    Q = Xc @ V
    QtY, Q2 = Q.T @ Yc, Q * Q
    errors, coefficients = [], []
    for alpha in alphas:
        w = 1.0 / (s + alpha)
        c = w[:, None] * QtY  # the coefficients in the eigenbasis, (p, k)
        leverage = Q2 @ w + 1.0 / len(X)
        errors.append(np.mean(((Yc - Q @ c) / (1.0 - leverage)[:, None]) ** 2, axis=0))
        coefficients.append(c)
    best = np.argmin(errors, axis=0)  # (k,): the first alpha of least error, per column
    c = np.stack(coefficients)[best, :, np.arange(Y.shape[1])].T
    return (X_new - x_mean) @ (V @ c) + y_mean


def _probe(A: np.ndarray, T: np.ndarray, folds) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the folds (a scikit-learn splitter such as
    ``KFold``) of the test R² of a ridge regression (``ridge_loo``: penalty chosen per
    quantity on the training fold) from A (n, width) to each column of T (n, k).

    The activations are centred and divided by one scale for the whole layer (their RMS
    on the training fold), not standardised unit by unit: a unit that fires on a handful
    of training formulas would be blown up by its tiny variance and give wild predictions
    wherever it fires on a test formula. One scale keeps the penalties comparable from
    layer to layer and changes nothing else (ridge on A / c with penalty a is ridge on A
    with penalty a c²). Units constant on the training fold (dead ReLUs) are left out
    before the fit, which changes no prediction and makes the p x p eigendecomposition of
    a deep layer several times cheaper."""
    scores = []
    for train, test in folds.split(A):
        live = np.ptp(A[train], axis=0) > 0
        if not live.any():  # a constant layer: the probe is the training mean
            live[0] = True
        fit, new = A[train][:, live], A[test][:, live]
        mean = fit.mean(axis=0)
        # the RMS over every unit, dead ones included, as if they were there
        scale = np.sqrt(np.sum((fit - mean) ** 2) / A[train].size) or 1.0
        predicted = ridge_loo((fit - mean) / scale, T[train], (new - mean) / scale)
        scores.append(r2_score(T[test], predicted, multioutput="raw_values"))
    scores = np.array(scores)
    return scores.mean(axis=0), scores.std(axis=0)


def _element_properties() -> tuple[np.ndarray, np.ndarray]:
    """(electronegativity, periodic-table group) of ElemNet's input elements, each (86,)
    in its column order, from Magpie's table (Pauling scale; group 3 for the lanthanides
    and actinides)."""
    table = element_table("magpie")
    rows = [ATOMIC_NUMBERS[symbol] - 1 for symbol in ELEMNET_ELEMENTS]
    values = table.values[rows]
    return (values[:, table.properties.index("Electronegativity")],
            values[:, table.properties.index("Column")].astype(int))


def _nearest_neighbour_agreement(A: np.ndarray, groups: np.ndarray) -> float:
    """Fraction of the rows of A (n, width) whose nearest other row (Euclidean) has the
    same group. Where several rows are equally near (a deep layer may map many elements
    to one vector, all zeros when they are dead), a row counts the share of them in its
    group: what picking one at random gives on average."""
    sq = (A * A).sum(axis=1)
    distances = np.maximum(sq[:, None] + sq[None, :] - 2.0 * A @ A.T, 0.0)
    np.fill_diagonal(distances, np.inf)
    tolerance = 1e-9 * sq.max()  # rounding of the squared distances of equal rows
    tied = distances <= distances.min(axis=1, keepdims=True) + tolerance
    same = groups[:, None] == groups[None, :]
    return float(np.mean((tied & same).sum(axis=1) / tied.sum(axis=1)))


def _chance_agreement(groups: np.ndarray) -> float:
    """The expected ``_nearest_neighbour_agreement`` when the groups are shuffled: the
    probability that another element drawn at random shares one's group."""
    counts = np.unique(groups, return_counts=True)[1]
    n = len(groups)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def inspect_network(
    model,
    formulas: Sequence[str],
    y,
    *,
    sample: int = 5000,
    seed: int = 0,
    folds: int = 5,
    projection: str = "pca",
    element_layer: str | None = None,
    target_name: str = "target",
    unit: str = "",
) -> InspectionResult:
    """Look inside ``model`` on a seeded sample of formulas (see the module docstring).

    Args:
        model: a network whose input is ElemNet's 86 element fractions
            (``ElementFractions``), e.g. from ``stoichnet.evaluate.load_network`` or an
            estimator's ``model_``.
        formulas: (n,) formula strings; y: (n,) numeric targets.
        sample: formulas drawn at random (without replacement) when there are more.
        seed: seed of the sample, the probes' folds and the projections.
        folds: folds of the probes' cross-validation (shuffled, seeded ``KFold``).
        projection: "pca" (default) or "umap" (needs the package ``umap-learn``).
        element_layer: the layer of the element map (default: the first inspected one).
        target_name, unit: for the figures.
    Raises:
        ValueError: the model's input is not 86 features, y is not numeric, an unknown
            ``element_layer``, or fewer formulas than ``folds`` remain.
        ImportError: ``projection="umap"`` without ``umap-learn``.
    """
    start = time.perf_counter()
    sample = check_int("sample", sample, 2)
    seed = check_int("seed", seed, 0)
    folds = check_int("folds", folds, 2)
    check_choice("projection", projection, PROJECTIONS)
    if projection == "umap":
        try:
            import umap  # noqa: F401
        except ImportError:
            raise ImportError("projection='umap' needs the optional package umap-learn "
                              "(pip install umap-learn); the default 'pca' does not") from None
    if tuple(model.input_shape or ()) != (len(ELEMNET_ELEMENTS),):
        raise ValueError(f"inspect needs a network whose input is ElemNet's "
                         f"{len(ELEMNET_ELEMENTS)} element fractions; this one takes "
                         f"{model.input_shape}")
    names = _inspected(model)
    element_layer = names[0] if element_layer is None else element_layer
    check_choice("element_layer", element_layer, names)
    formulas, y, notes = _sample(formulas, y, sample, seed)

    fractions = ElementFractions(on_unsupported="drop")
    with warnings.catch_warnings():  # the dropped rows are counted in the notes instead
        warnings.simplefilter("ignore")
        X = fractions.transform(formulas)
    if len(fractions.dropped_):
        notes.append(f"{fractions.dropped_} (outside the network's input)")
        kept = fractions.dropped_.kept
        formulas, y = [formulas[i] for i in kept], y[kept]
    if len(formulas) < folds:
        raise ValueError(f"{len(formulas)} formula(s) to inspect; the probes' {folds} folds "
                         "need at least as many")

    electronegativity, group = _element_properties()
    present = X > 0
    anion = np.where(present, electronegativity, -np.inf).argmax(axis=1)  # per formula
    labels = {"anion_group": group[anion],
              "oxide": np.where(present[:, ELEMNET_ELEMENTS.index("O")], "yes", "no")}
    descriptors = CompositionFeaturizer("magpie").transform(formulas, as_frame=True)
    quantities = {"target": y, **{name: descriptors[column].to_numpy(np.float64)
                                     for name, column in DESCRIPTORS.items()}}
    T = np.column_stack(list(quantities.values()))

    activations = {INPUT: X, **model.activations(X, layers=names)}
    kfold = KFold(folds, shuffle=True, random_state=seed)
    widths, dead, projections, variance = [], [], {}, {}
    means, stds = [], []
    for name, A in activations.items():
        A = A.reshape(len(A), -1).astype(np.float64)
        widths.append(A.shape[1])
        dead.append(None if name == INPUT else int((~A.any(axis=0)).sum()))
        if A.shape[1] >= 2:
            projections[name], share = _project(A, projection, seed)
            if share is not None:
                variance[name] = share
        mean, std = _probe(A, T, kfold)
        means.append(mean)
        stds.append(std)
    layers = list(activations)
    probes = pd.DataFrame(means, index=pd.Index(layers, name="layer"), columns=list(quantities))
    probe_std = pd.DataFrame(stds, index=probes.index, columns=probes.columns)
    if any(w < 2 for w in widths):
        notes.append("layers of one unit (the output) are probed but not projected")

    eye = np.eye(len(ELEMNET_ELEMENTS), dtype=model.dtype)  # every pure element
    pure = model.activations(eye, layers=names)
    agreement = {name: _nearest_neighbour_agreement(
        A.reshape(len(A), -1).astype(np.float64), group) for name, A in pure.items()}
    xy, _ = _project(pure[element_layer].reshape(len(eye), -1).astype(np.float64), "pca", seed)
    elements = pd.DataFrame({"symbol": ELEMNET_ELEMENTS, "group": group,
                             "x": xy[:, 0], "y": xy[:, 1]})
    return InspectionResult(
        layers=layers, widths=widths, dead_units=dead, probes=probes, probe_std=probe_std,
        projections=projections, projection=projection, explained_variance=variance,
        target=y, labels=labels, formulas=formulas, element_layer=element_layer,
        elements=elements, element_agreement=agreement, element_chance=_chance_agreement(group),
        folds=folds, seed=seed, target_name=target_name, unit=unit, notes=notes,
        seconds=time.perf_counter() - start)


def write_inspection(result: InspectionResult, out_dir, overwrite: bool = False,
                     info: Mapping | None = None) -> list[Path]:
    """Write :data:`FILES` into ``out_dir``: ``inspect.json`` (``to_json`` plus ``info``,
    e.g. the model file and the data), ``inspect.csv`` (``table``) and the PNG figures.
    A non-empty folder is refused unless ``overwrite``; files appear complete or not at
    all (``util.files.atomic_dir``)."""
    out = Path(out_dir)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / FILES[0]).write_text(json.dumps({**result.to_json(), **(info or {})}, indent=2,
                                               default=str))
        result.table().to_csv(tmp / FILES[1], index=False)
        result.probe_figure().savefig(tmp / FILES[2], dpi=110)
        result.element_figure().savefig(tmp / FILES[3], dpi=110)
        for name, color in zip(FILES[4:], ("target", *LABELS), strict=True):
            result.projection_figure(color).savefig(tmp / name, dpi=110)
    return [out / name for name in FILES]
