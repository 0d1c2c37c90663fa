"""One interface to every model's uncertainty: ``predict_dist(model, X) -> (mean, sigma)``.

A model has an uncertainty when it can say, per row, how far its prediction may be off:

- a network with an aleatoric head (``loss="gaussian_nll"`` / ``"laplace_nll"``) or with
  Monte-Carlo dropout: its own ``predict_dist`` (:class:`~stoichnet.models.estimators.
  NeuralNetRegressor`);
- :class:`DeepEnsembleRegressor`: K networks from different seeds (Lakshminarayanan et
  al. 2017), the spread of their means (epistemic) and their mean aleatoric variance;
- a random forest (``RandomForestRegressor``, also as the last step of a ``Pipeline``
  such as ``rf_magpie``): the mean and standard deviation of its trees' predictions; and,
  without a Gaussian shape, :func:`quantile_interval`: the quantiles of those predictions;
  for its own training rows, :func:`oob_dist`: those of the trees that did not see them.

:func:`add_sigma_head` gives a trained one-output network an aleatoric head afterwards,
keeping its hidden layers and its mean output bit for bit (how the shipped
formation-energy network got its sigma, ``benchmarks/pack_pretrained.py --sigma-head``).

sigma is a standard deviation in the target's unit. Whether it is *calibrated* is measured,
and repaired on validation rows, by :mod:`stoichnet.evaluate.uncertainty`.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np
from scipy import optimize
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

from ..nn import Dense, Sequential, losses
from ..util.checks import check_int, check_real
from .distributions import mixture
from .estimators import ElemNetRegressor


def uncertainty_kinds(model) -> tuple[str, ...]:
    """What ``predict_dist(model, X)``'s sigma is made of, e.g. ("aleatoric",),
    ("mc dropout",), ("ensemble", "aleatoric"), ("trees",); () when the model has none."""
    if isinstance(model, Pipeline):
        return uncertainty_kinds(model[-1])
    if isinstance(model, RandomForestRegressor):
        return ("trees",)
    kinds = getattr(model, "uncertainty_kinds", None)
    return kinds() if callable(kinds) else ()


def predict_dist(model, X, *, components: bool = False) -> tuple[np.ndarray, ...]:
    """(mean, sigma) of a fitted model's predictive distribution, (n_samples,) float64 each
    in the target's unit; with ``components``, (mean, epistemic, aleatoric) with
    sigma² = epistemic² + aleatoric².

    A random forest's mean is its prediction (the mean of its trees) and its sigma the
    standard deviation of its trees' predictions (all epistemic).

    Raises:
        ValueError: the model has no uncertainty (the message says how to get one).
    """
    if isinstance(model, Pipeline):
        features = model[:-1].transform(X) if len(model) > 1 else X
        return predict_dist(model[-1], features, components=components)
    if isinstance(model, RandomForestRegressor):
        trees = tree_predictions(model, X)
        mean, spread = trees.mean(axis=0), trees.std(axis=0)
        return (mean, spread, np.zeros_like(mean)) if components else (mean, spread)
    if not uncertainty_kinds(model):
        if hasattr(model, "predict_dist"):
            return model.predict_dist(X, components=components)  # raises, saying why
        raise ValueError(
            f"a {type(model).__name__} has no uncertainty; models with one: networks with a "
            "likelihood loss or Monte-Carlo dropout, DeepEnsembleRegressor, random forests")
    return model.predict_dist(X, components=components)


def tree_predictions(model, X) -> np.ndarray:
    """(n_trees, n_samples) float64: each tree's predictions of a fitted random forest
    (``RandomForestRegressor``, or a ``Pipeline`` ending in one, such as ``rf_magpie``).

    Raises:
        ValueError: ``model`` is no such forest, or a forest of several targets.
    """
    if isinstance(model, Pipeline):
        features = model[:-1].transform(X) if len(model) > 1 else X
        return tree_predictions(model[-1], features)
    if not isinstance(model, RandomForestRegressor):
        raise ValueError(f"tree predictions need a random forest, got a {type(model).__name__}")
    check_is_fitted(model, "estimators_")
    X = np.asarray(X, dtype=np.float32)  # as the forest's own predict converts it
    trees = np.stack([tree.predict(X) for tree in model.estimators_]).astype(np.float64)
    if trees.ndim != 2:
        raise ValueError(f"a forest of one target is needed; this one has {trees.shape[2]}")
    return trees


def oob_dist(model, X) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-bag (mean, sigma), (n_samples,) float64 each in the target's unit, of a
    fitted random forest (or a ``Pipeline`` ending in one) for the very rows ``X`` it was
    fitted on, in the same order: each row's mean and standard deviation over the trees
    whose bootstrap sample missed it (about a third of them, Breiman 2001). Like
    :func:`predict_dist` on new rows, but for training rows, so that a forest's sigma can
    be recalibrated on rows it has not seen without holding any back. A row that every
    tree saw gets NaN.

    Raises:
        ValueError: no such forest, a forest fitted without ``bootstrap``, or ``X`` with
            fewer rows than the forest drew from.
    """
    trees = tree_predictions(model, X)  # checks the forest
    forest = model[-1] if isinstance(model, Pipeline) else model
    if not forest.bootstrap:
        raise ValueError("out-of-bag predictions need a forest fitted with bootstrap=True")
    inbag = np.zeros(trees.shape, dtype=bool)
    for t, rows in enumerate(forest.estimators_samples_):
        if rows.size and rows.max() >= trees.shape[1]:
            raise ValueError(f"the forest drew rows up to {rows.max()}; X has only "
                             f"{trees.shape[1]} rows: pass the rows it was fitted on")
        inbag[t, rows] = True
    trees[inbag] = np.nan
    seen = (~inbag).any(axis=0)
    mean, sigma = np.full(trees.shape[1], np.nan), np.full(trees.shape[1], np.nan)
    mean[seen], sigma[seen] = np.nanmean(trees[:, seen], axis=0), np.nanstd(trees[:, seen], axis=0)
    return mean, sigma


def quantile_interval(model, X, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), (n_samples,) each in the target's unit: the central ``level`` interval
    of a random forest's trees' predictions (their (1 - level)/2 and (1 + level)/2
    quantiles, NumPy's linear interpolation). A cheap interval that assumes no Gaussian
    shape; it spans the trees' disagreement only, not the noise of the target."""
    level = check_real("level", level, 0, 1, low_open=True, high_open=True)
    trees = tree_predictions(model, X)
    low, high = np.quantile(trees, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def add_sigma_head(model: Sequential, X, y) -> Sequential:
    """A copy of a trained one-output regression network with a second output unit, the
    log sigma of a Gaussian, fitted to (X, y) while everything else is held fixed.

    The new network's hidden layers and the mean column (column 0) of its output layer
    are ``model``'s, bit for bit, so its means are ``model``'s predictions (to the last
    bit: BLAS may sum a two-column matrix product in another order). Column 1 is
    s = h w + c on the last hidden layer's activations h (n, units), with (w, c)
    minimising the Gaussian negative log-likelihood of ``nn.losses.gaussian_nll`` (and
    its gradient) at the fixed means: a convex problem in (w, c), solved by L-BFGS from
    w = 0, c = log of the root mean square residual. Dead units (h = 0 on every row) keep
    w = 0. The result is compiled with loss "gaussian_nll" (and ``model``'s optimizer
    settings), which is what makes a saved network's second column read as log sigma.

    Args:
        model: a built network whose last layer is a linear Dense of 1 unit, predicting in
            the target's unit.
        X: (n_samples, *input_shape) the network's inputs, e.g. (n, 86) element fractions.
        y: (n_samples,) targets in the target's unit.
    Returns the new (built, compiled) Sequential; ``model`` is not changed.
    Raises:
        ValueError: ``model``'s last layer is not a linear 1-unit Dense, or y is not (n,)
            finite numbers for the n rows of X.
    """
    out = model.layers[-1]
    if not isinstance(out, Dense) or out.units != 1 or out.activation != "linear":
        raise ValueError(
            f"add_sigma_head needs a network whose last layer is a linear Dense of 1 unit "
            f"(a mean); {out.name} is a {type(out).__name__} with "
            f"{getattr(out, 'units', '?')} unit(s) and activation "
            f"{getattr(out, 'activation', '?')!r}")
    h = model.activations(X, layers=model.layers[-2].name)[model.layers[-2].name]
    h = h.reshape(len(h), -1).astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (len(h),) or not np.isfinite(y).all():
        raise ValueError(f"y must be {len(h)} finite targets, got shape {y.shape}")
    mean = h @ out.params["W"][:, 0].astype(np.float64) + float(out.params["b"][0])
    design = np.column_stack([h, np.ones(len(h))])  # s = design @ [w, c]

    def nll(theta):
        a = np.column_stack([mean, design @ theta])
        gradient = losses.gaussian_nll_gradient(a, y[:, None])[:, 1] @ design
        return losses.gaussian_nll(a, y[:, None]), gradient

    start = np.zeros(design.shape[1])
    start[-1] = 0.5 * np.log(np.mean((y - mean) ** 2))
    fit = optimize.minimize(nll, start, jac=True, method="L-BFGS-B",
                            options={"maxiter": 10_000, "gtol": 1e-10, "ftol": 1e-15})

    config = model.get_config()
    config["layers"][-1]["config"]["units"] = 2
    headed = Sequential.from_config(config)
    for mine, theirs in zip(headed.layers[:-1], model.layers[:-1], strict=True):
        for key, value in theirs.params.items():
            mine.params[key][...] = value
    headed.layers[-1].params["W"][:, :1] = out.params["W"]
    headed.layers[-1].params["b"][:1] = out.params["b"]
    headed.layers[-1].params["W"][:, 1] = fit.x[:-1].reshape(out.params["W"].shape[0])
    headed.layers[-1].params["b"][1] = fit.x[-1]
    compiled = model.get_compile_config()
    headed.compile(compiled["optimizer"] if compiled else "adam", "gaussian_nll")
    return headed


@dataclass(repr=False, eq=False)  # sklearn's repr; estimators compare by identity
class DeepEnsembleRegressor(RegressorMixin, BaseEstimator):
    """A deep ensemble: ``n_members`` copies of a network regressor trained from
    different seeds, one after another, on the same rows (or, with ``bootstrap``, each on
    its own resample of them).

    Args:
        estimator: the member, an unfitted regressor with ``random_state`` (default
            ``ElemNetRegressor()``); each member is a clone with its own seed. With a
            likelihood loss (an aleatoric head) every member predicts a sigma too.
        n_members: K >= 2.
        random_state: seed of the members' seeds (the same seed, the same ensemble).
        bootstrap: train each member on n rows drawn with replacement from the n
            training rows, by its own seed (bagging, Breiman 1996; the bootstrap
            ensembles of Palmer et al. 2022): each member misses about a third of the
            rows, so the members differ by more than their seeds. The validation rows
            are the same for every member.

    Attributes (after ``fit``, or :meth:`set_members` with the members of
    :meth:`unfitted_members` trained elsewhere): ``estimators_`` (the K fitted members;
    fewer after :meth:`request_stop`), ``member_seeds_``, ``n_features_in_``.

    Predictions: the mean of the members' means; ``predict_dist``'s epistemic sigma is the
    standard deviation of the members' means and the aleatoric sigma the root mean of
    the members' own variances (head and Monte-Carlo dropout), so that
    sigma² = epistemic² + aleatoric², the variance of the equally weighted mixture.
    """

    estimator: object = None
    _: KW_ONLY
    n_members: int = 5
    random_state: int | None = None
    bootstrap: bool = False

    def fit(self, X, y, validation_data=None, **fit_params):
        """Train the K members on (X, y) (each on its :meth:`member_data`), one after
        another; ``validation_data`` and ``fit_params`` go to every member's ``fit``."""
        self._stop, self._current = False, None
        fitted = []
        for member in self.unfitted_members():
            self._current = member
            member.fit(*self.member_data(member, X, y), validation_data=validation_data,
                       **fit_params)
            fitted.append(member)
            if self._stop:
                break
        self._current = None
        return self.set_members(fitted)

    def unfitted_members(self) -> list:
        """The K members ``fit`` trains, in order and unfitted: clones of ``estimator``,
        each with its own seed (``random_state``). For training them elsewhere, e.g. as
        independent jobs (``stoichnet.evaluate.ensemble``); :meth:`set_members` takes
        them back fitted."""
        n_members = check_int("n_members", self.n_members, 2)
        if not isinstance(self.bootstrap, bool | np.bool_):
            raise TypeError(f"bootstrap must be True or False, got {self.bootstrap!r}")
        if self.random_state is not None:
            check_int("random_state", self.random_state, 0)
        template = ElemNetRegressor() if self.estimator is None else self.estimator
        seeds = np.random.SeedSequence(self.random_state).generate_state(n_members)
        return [clone(template).set_params(random_state=int(seed)) for seed in seeds]

    def member_data(self, member, X, y) -> tuple:
        """The (X, y) that ``member`` (one of :meth:`unfitted_members`) trains on: X and y
        themselves, or with ``bootstrap`` len(y) rows of them drawn with replacement, in
        ascending order, by a generator seeded from the member's seed. X: formulas or a
        feature matrix (a list, array, Series or DataFrame); y: (n_samples,)."""
        if not self.bootstrap:
            return X, y
        n = len(y)
        rows = np.sort(np.random.default_rng([member.random_state, n]).integers(0, n, n))
        return _safe_indexing(X, rows), _safe_indexing(y, rows)

    def set_members(self, members) -> DeepEnsembleRegressor:
        """Make this ensemble of the fitted ``members`` (those of
        :meth:`unfitted_members`, in order; fewer when a fit was stopped), as ``fit``
        leaves it; returns self."""
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one fitted member, got none")
        for member in members:
            check_is_fitted(member)
        self.estimators_ = members
        self.member_seeds_ = [member.random_state for member in members]
        self.n_features_in_ = members[0].n_features_in_
        return self

    def request_stop(self) -> None:
        """Stop a running ``fit`` (e.g. from a Ctrl-C handler): the member being trained
        stops after its current mini-batch, keeping its best weights so far, and no
        further member is trained; the ensemble keeps the members it has."""
        self._stop = True
        member = getattr(self, "_current", None)
        if getattr(member, "model_", None) is not None:
            member.model_.stop_training = True

    def predict(self, X) -> np.ndarray:
        """(n_samples,) the mean of the members' predictions."""
        check_is_fitted(self, "estimators_")
        return np.mean([member.predict(X) for member in self.estimators_], axis=0)

    def uncertainty_kinds(self) -> tuple[str, ...]:
        """("ensemble", ...and what each member adds: "aleatoric", "mc dropout")."""
        check_is_fitted(self, "estimators_")
        return ("ensemble", *uncertainty_kinds(self.estimators_[0]))

    def predict_dist(self, X, *, components: bool = False) -> tuple[np.ndarray, ...]:
        """(mean, sigma), or with ``components`` (mean, epistemic, aleatoric), (n_samples,)
        each in the target's unit (see the class docstring)."""
        check_is_fitted(self, "estimators_")
        means, sigmas = [], []
        for member in self.estimators_:
            if uncertainty_kinds(member):
                mean, sigma = predict_dist(member, X)
            else:
                mean, sigma = np.asarray(member.predict(X), dtype=np.float64), 0.0
            means.append(mean)
            sigmas.append(np.broadcast_to(sigma, mean.shape))
        mean, epistemic, aleatoric = mixture(means, sigmas)
        if components:
            return mean, epistemic, aleatoric
        return mean, np.sqrt(epistemic**2 + aleatoric**2)
