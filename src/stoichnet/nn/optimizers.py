"""Optimizers: rules that step parameters against their gradients.

Contract used by ``Sequential``: ``step(params, grads)`` updates every array in
``params`` in place from the matching array in ``grads`` (same shape and dtype),
then increments ``iterations``. State (moments, accumulators) is created lazily
on the first step, in the parameters' dtype, and is exposed through
``state_dict()`` / ``load_state_dict()`` so checkpoints can resume bit-identically.

Every update rule follows PyTorch's documented algorithm (``torch.optim``), so a
trajectory can be compared with PyTorch digit for digit; argument names and
defaults are Keras'. Each class's docstring says where the two libraries differ.

Each rule exists twice: ``reference`` is the paper's formula in plain NumPy, a few lines
to read; ``step`` runs the same rule as one fused numba kernel from
``stoichnet.nn.kernels`` (one pass over memory instead of ~12, shared by a few threads),
with per-step scalars from ``_step_constants``. Tests hold the two equal: bit for bit
where the kernel computes in the reference's order, within 2 ulp where it folds the bias
corrections into its constants (Adam, Nadam). The kernel stores moments below the
smallest normal number as zero (see ``stoichnet.nn.kernels``); the reference does not.
"""

from __future__ import annotations

import math

import numpy as np

from stoichnet.nn import kernels, schedules
from stoichnet.nn.kernels import thread_limit as thread_limit  # public here: the CLI uses it
from stoichnet.util.checks import check_bool, check_int, check_real

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Optimizer:
    """Base class.

    Subclasses declare their per-parameter state in ``_slots()``, the rule as the paper
    writes it in ``reference(p, g, state, t, lr)``, and the fast form of the same rule in
    ``_step_constants(t, lr)`` (the per-step scalars) and ``_update(p, g, state, k)``, which
    calls the rule's kernel on one chunk.

    Args:
        learning_rate: a float >= 0, or a schedule (callable: step -> learning
            rate, e.g. from ``stoichnet.nn.schedules``).
        weight_decay: L2 penalty coefficient added to the gradient (PyTorch's
            ``weight_decay``: g <- g + weight_decay * theta). Keras' ``weight_decay``
            is decoupled instead (theta <- theta - lr * weight_decay * theta, for every
            optimizer): here that is ``decoupled_weight_decay=True`` of the Adam family.
        num_threads: threads sharing the update of large arrays (default None: the
            limit of ``thread_limit`` in effect at each step, else the CPUs available to
            this process, at most 4). Results do not depend on it, so
            it is an execution setting, not part of ``get_config``.
    Attributes:
        iterations: number of steps taken so far.
        lr_multiplier: factor applied on top of the (scheduled) rate; plateau
            reduction changes it.
    """

    decoupled_weight_decay = False  # AdamW-style decay: only the Adam family offers it

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.0, *,
                 num_threads: int | None = None):
        if not callable(learning_rate):
            learning_rate = check_real("learning_rate", learning_rate, 0.0)
        self.learning_rate = learning_rate
        self.weight_decay = check_real("weight_decay", weight_decay, 0.0)
        self.num_threads = None if num_threads is None else check_int("num_threads", num_threads, 1)
        self.iterations = 0
        self.lr_multiplier = 1.0
        self._state: list[dict[str, np.ndarray]] | None = None

    @property
    def current_learning_rate(self) -> float:
        lr = self.learning_rate
        base = lr(self.iterations) if callable(lr) else lr
        return float(base) * self.lr_multiplier

    # --- what a subclass defines ---------------------------------------------------------
    def _slots(self) -> dict[str, float]:
        """Per-parameter state arrays: name -> initial value."""
        return {}

    def _step_constants(self, t: int, lr: float) -> dict[str, float]:
        """Scalars shared by all parameters at step ``t`` (1-based), learning rate ``lr``."""
        return {"lr": lr}

    def _update(self, p, g, state, k) -> None:
        """Update one chunk: 1-D views ``p``, ``g``, ``state[name]``; ``k`` holds the
        step constants in the chunk's dtype, plus ``l2`` (the coefficient of PyTorch's
        weight decay, added to the gradient) and ``decay`` (the AdamW factor applied
        to the parameters first)."""
        raise NotImplementedError

    def _hyperparameters(self) -> dict:
        return {}

    # --- the rule in plain NumPy: the oracle the kernels are tested against ----------------
    def reference(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], t: int,
                  lr: float) -> None:
        """One step of the rule, written as the paper's formula in NumPy (slow: one pass over
        memory per operation). ``step`` computes the same with the fused kernel.

        Args:
            p: one parameter as a 1-D array (e.g. ``W.reshape(-1)``), updated in place.
            g: its gradient, same size and dtype (not modified).
            state: slot name -> 1-D array of p's size (``new_state(p)`` before the first
                step), updated in place.
            t: the step's number, from 1.
            lr: the step's learning rate (the schedule's value times ``lr_multiplier``).
        """
        raise NotImplementedError

    def _decayed(self, p: np.ndarray, g: np.ndarray, lr: float) -> np.ndarray:
        """Weight decay for ``reference``: returns g + wd * theta (PyTorch's L2 ``weight_decay``),
        or, when decoupled (AdamW), shrinks theta <- (1 - lr * wd) * theta in place and returns g."""
        if self.decoupled_weight_decay:
            p *= 1 - lr * self.weight_decay
            return g
        return g + self.weight_decay * p if self.weight_decay else g

    def new_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        """The state of parameter ``p`` before its first step: slot name -> 1-D array of
        ``p.size`` elements in p's dtype, filled with the slot's initial value."""
        return {name: np.full(p.size, value, dtype=p.dtype)
                for name, value in self._slots().items()}

    # --- the engine --------------------------------------------------------------------
    def step(self, params: list[np.ndarray], grads: list[np.ndarray],
             lr_scales: list[float] | None = None) -> None:
        """Update every array of ``params`` in place from the matching ``grads``.

        Args:
            params: float32 or float64 C-contiguous arrays, any shapes.
            grads: arrays of the same shapes and dtypes.
            lr_scales: per array, a factor on the learning rate (PyTorch's parameter
                groups with their own ``lr``; transfer learning trains pretrained layers
                slower than a new output layer); None: 1 for every array.
        """
        params, grads = self._validate(params, grads)
        scales = [1.0] * len(params) if lr_scales is None else [
            check_real(f"lr_scales[{i}]", s, 0.0, low_open=True) for i, s in enumerate(lr_scales)]
        if len(scales) != len(params):
            raise ValueError(f"got {len(scales)} lr_scales for {len(params)} params")
        if self._state is None:
            self._state = [self.new_state(p) for p in params]
        lr = self.current_learning_rate
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"learning rate at step {self.iterations} is {lr!r} (schedule "
                             f"{self.learning_rate!r} times lr_multiplier {self.lr_multiplier!r}); "
                             "it must be finite and >= 0")
        for scale in dict.fromkeys(scales):  # one pass per group, in order of appearance
            group = [i for i, s in enumerate(scales) if s == scale]
            k = self._step_constants(self.iterations + 1, lr * scale)
            wd = self.weight_decay
            k["l2"] = 0.0 if self.decoupled_weight_decay else wd
            k["decay"] = 1.0 - k["lr"] * wd if self.decoupled_weight_decay else 1.0
            # rounded to the parameters' dtype once, as NumPy rounds a Python scalar
            k = {dtype: {name: dtype.type(value) for name, value in k.items()}
                 for dtype in {params[i].dtype for i in group}}
            kernels.for_each_chunk(
                lambda p, g, state, k=k: self._update(p, g, state, k[p.dtype]),
                [params[i] for i in group], [grads[i] for i in group],
                [self._state[i] for i in group], self.num_threads)
        self.iterations += 1

    def _validate(self, params, grads):
        if not isinstance(params, list | tuple) or not isinstance(grads, list | tuple):
            raise TypeError(
                f"params and grads must be lists of arrays, got {type(params).__name__} and "
                f"{type(grads).__name__}")
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} params but {len(grads)} grads")
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
                raise TypeError(f"params[{i}] and grads[{i}] must be numpy arrays, got "
                                f"{type(p).__name__} and {type(g).__name__}")
            if p.dtype not in _FLOAT_DTYPES:
                raise TypeError(f"params[{i}] has dtype {p.dtype}; allowed: float32, float64")
            if g.dtype != p.dtype or g.shape != p.shape:
                raise ValueError(f"grads[{i}] is {g.dtype} {g.shape} but params[{i}] is "
                                 f"{p.dtype} {p.shape}; they must match")
            if not p.flags.c_contiguous or not p.flags.writeable:
                raise ValueError(f"params[{i}] must be a writeable C-contiguous array "
                                 "(it is updated in place)")
        if self._state is not None:
            if len(self._state) != len(params):
                raise ValueError(f"this optimizer holds state for {len(self._state)} arrays "
                                 f"but step() received {len(params)}")
            for i, (p, state) in enumerate(zip(params, self._state, strict=True)):
                for name, arr in state.items():
                    if arr.size != p.size or arr.dtype != p.dtype:
                        raise ValueError(
                            f"state {name!r} of params[{i}] is {arr.dtype} with {arr.size} "
                            f"elements but params[{i}] is {p.dtype} with {p.size}")
        return params, [np.ascontiguousarray(g) for g in grads]

    # --- (de)serialisation --------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-serialisable hyper-parameters; ``get(config)`` rebuilds the optimizer."""
        lr = self.learning_rate
        if callable(lr):
            if not hasattr(lr, "get_config"):
                raise TypeError(
                    f"learning_rate {lr!r} has no get_config(), so this optimizer cannot be "
                    "saved; use a schedule from stoichnet.nn.schedules")
            lr = lr.get_config()
        return {"name": type(self).__name__, "learning_rate": lr,
                "weight_decay": self.weight_decay, **self._hyperparameters()}

    def _scalar_state(self) -> dict[str, float]:
        return {}

    def _load_scalar_state(self, state: dict) -> None:
        """Restore what ``_scalar_state`` saved."""

    def state_dict(self) -> dict:
        """Everything a resumed run needs: ``iterations``, ``lr_multiplier``, scalar state
        and, once stepped, one array per slot and parameter (``"<slot>.<i>"``, 1-D)."""
        state = {"iterations": np.int64(self.iterations),
                 "lr_multiplier": np.float64(self.lr_multiplier),
                 **{name: np.float64(v) for name, v in self._scalar_state().items()}}
        for i, slots in enumerate(self._state or []):
            for name, arr in slots.items():
                state[f"{name}.{i}"] = arr.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``; arrays are copied. Raises ValueError on a mismatch."""
        scalars = {"iterations", "lr_multiplier", *self._scalar_state()}
        missing = scalars - set(state)
        if missing:
            raise ValueError(f"optimizer state is missing {sorted(missing)}")
        slots = self._slots()
        arrays = {key: value for key, value in state.items() if key not in scalars}
        per_param: dict[int, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            name, _, index = key.rpartition(".")
            if name not in slots or not index.isdigit():
                raise ValueError(f"unexpected optimizer state entry {key!r} for "
                                 f"{type(self).__name__}; its slots are {sorted(slots)}")
            value = np.asarray(value)
            if value.ndim != 1 or value.dtype not in _FLOAT_DTYPES:
                raise ValueError(f"optimizer state {key!r} must be a 1-D float32/float64 array, "
                                 f"got {value.dtype} {value.shape}")
            per_param.setdefault(int(index), {})[name] = value.copy()
        if sorted(per_param) != list(range(len(per_param))) or any(
                set(d) != set(slots) for d in per_param.values()):
            raise ValueError(f"optimizer state arrays {sorted(arrays)} do not cover slots "
                             f"{sorted(slots)} for parameters 0..{len(per_param) - 1}")
        iterations = int(state["iterations"])
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        self.iterations = iterations
        self.lr_multiplier = float(state["lr_multiplier"])
        self._load_scalar_state(state)
        self._state = [per_param[i] for i in range(len(per_param))] if per_param else None

    def __repr__(self) -> str:
        config = {"learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                  **self._hyperparameters()}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    PyTorch's ``torch.optim.SGD`` with ``dampening=0``: g <- g + wd*theta;
    b <- momentum*b + g; theta <- theta - lr * (g + momentum*b if nesterov else b).
    Plain SGD is momentum 0 (no buffer is kept). Keras keeps v = momentum*v - lr*g
    instead, which is the same trajectory for a constant learning rate but not when
    the rate changes. Nesterov momentum: Sutskever et al., "On the importance of
    initialization and momentum in deep learning", ICML 2013.

    Defaults: learning_rate=0.01 (Keras; PyTorch 0.001).
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.momentum = check_real("momentum", momentum, 0.0)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True requires momentum > 0, got momentum=0")

    def _slots(self):
        return {"momentum_buffer": 0.0} if self.momentum else {}

    def reference(self, p, g, state, t, lr):
        g = self._decayed(p, g, lr)
        if self.momentum:
            b = state["momentum_buffer"]
            b[...] = self.momentum * b + g
            g = g + self.momentum * b if self.nesterov else b
        p -= lr * g

    def _step_constants(self, t, lr):
        return {"lr": lr, "momentum": self.momentum}

    def _update(self, p, g, state, k):
        kernels.sgd(p, g, state.get("momentum_buffer"), k["l2"], k["lr"], k["momentum"],
                    self.nesterov)

    def _hyperparameters(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop (Hinton, Coursera "Neural Networks for Machine Learning", lecture 6e, 2012);
    centred variant from Graves, "Generating sequences with recurrent neural networks", 2013.

    PyTorch's ``torch.optim.RMSprop``: v <- rho*v + (1-rho)*g^2; with ``centered``
    also a <- rho*a + (1-rho)*g and v~ = v - a^2; d = sqrt(v~) + epsilon;
    with momentum b <- momentum*b + g/d and theta <- theta - lr*b, otherwise
    theta <- theta - lr*g/d. Epsilon is added outside the square root, as in PyTorch;
    Keras adds it inside, and its momentum buffer accumulates lr*g/d (the same trajectory
    only for a constant rate).

    Defaults (Keras): learning_rate=0.001, rho=0.9, epsilon=1e-7. PyTorch: lr=0.01,
    alpha=0.99 (its name for rho), eps=1e-8.
    """

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, weight_decay: float = 0.0,
                 **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.rho = check_real("rho", rho, 0.0, 1.0)
        self.momentum = check_real("momentum", momentum, 0.0)
        self.epsilon = check_real("epsilon", epsilon, 0.0)
        self.centered = check_bool("centered", centered)

    def _slots(self):
        slots = {"square_avg": 0.0}
        if self.centered:
            slots["grad_avg"] = 0.0
        if self.momentum:
            slots["momentum_buffer"] = 0.0
        return slots

    def reference(self, p, g, state, t, lr):
        g = self._decayed(p, g, lr)
        rho, v = self.rho, state["square_avg"]
        v[...] = rho * v + (1 - rho) * g**2
        if self.centered:
            a = state["grad_avg"]
            a[...] = rho * a + (1 - rho) * g
            v = v - a**2
        step = g / (np.sqrt(v) + self.epsilon)
        if self.momentum:
            b = state["momentum_buffer"]
            b[...] = self.momentum * b + step
            step = b
        p -= lr * step

    def _step_constants(self, t, lr):
        return {"lr": lr, "rho": self.rho, "one_minus_rho": 1.0 - self.rho,
                "epsilon": self.epsilon, "momentum": self.momentum}

    def _update(self, p, g, state, k):
        kernels.rmsprop(p, g, state["square_avg"], state.get("grad_avg"),
                        state.get("momentum_buffer"), k["l2"], k["lr"], k["rho"],
                        k["one_minus_rho"], k["epsilon"], k["momentum"])

    def _hyperparameters(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, "Adaptive subgradient methods for online learning
    and stochastic optimization", JMLR 12, 2011).

    PyTorch's ``torch.optim.Adagrad`` (``lr_decay=0``): s <- s + g^2;
    theta <- theta - lr * g / (sqrt(s) + epsilon). Epsilon sits outside the square
    root, as in PyTorch; Keras adds it inside.

    Defaults (Keras): learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7.
    PyTorch: lr=0.01, initial_accumulator_value=0, eps=1e-10.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: float = 0.0, **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.initial_accumulator_value = check_real(
            "initial_accumulator_value", initial_accumulator_value, 0.0)
        self.epsilon = check_real("epsilon", epsilon, 0.0)

    def _slots(self):
        return {"sum": self.initial_accumulator_value}

    def reference(self, p, g, state, t, lr):
        g = self._decayed(p, g, lr)
        s = state["sum"]
        s += g**2
        p -= lr * (g / (np.sqrt(s) + self.epsilon))

    def _step_constants(self, t, lr):
        return {"lr": lr, "epsilon": self.epsilon}

    def _update(self, p, g, state, k):
        kernels.adagrad(p, g, state["sum"], k["l2"], k["lr"], k["epsilon"])

    def _hyperparameters(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta (Zeiler, "ADADELTA: an adaptive learning rate method", arXiv:1212.5701, 2012).

    PyTorch's ``torch.optim.Adadelta``: v <- rho*v + (1-rho)*g^2;
    delta = sqrt(u + epsilon) / sqrt(v + epsilon) * g; u <- rho*u + (1-rho)*delta^2;
    theta <- theta - lr*delta. Keras computes the same.

    Defaults (Keras): learning_rate=0.001, rho=0.95, epsilon=1e-7. PyTorch: lr=1.0
    (Zeiler's rule has no learning rate, i.e. 1.0), rho=0.9, eps=1e-6.
    """

    def __init__(self, learning_rate=0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 weight_decay: float = 0.0, **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.rho = check_real("rho", rho, 0.0, 1.0)
        self.epsilon = check_real("epsilon", epsilon, 0.0)

    def _slots(self):
        return {"square_avg": 0.0, "acc_delta": 0.0}

    def reference(self, p, g, state, t, lr):
        g = self._decayed(p, g, lr)
        rho, eps = self.rho, self.epsilon
        v, u = state["square_avg"], state["acc_delta"]
        v[...] = rho * v + (1 - rho) * g**2
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u[...] = rho * u + (1 - rho) * delta**2
        p -= lr * delta

    def _step_constants(self, t, lr):
        return {"lr": lr, "rho": self.rho, "one_minus_rho": 1.0 - self.rho,
                "epsilon": self.epsilon}

    def _update(self, p, g, state, k):
        kernels.adadelta(p, g, state["square_avg"], state["acc_delta"], k["l2"], k["lr"],
                         k["rho"], k["one_minus_rho"], k["epsilon"])

    def _hyperparameters(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


class _AdamFamily(Optimizer):
    """What Adam, Adamax and Nadam share: the first moment m <- b1*m + (1-b1)*g, its bias
    correction 1 - b1^t, hyper-parameter checks and decoupled (AdamW) weight decay."""

    def __init__(self, learning_rate, beta_1, beta_2, epsilon, weight_decay,
                 decoupled_weight_decay, **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.beta_1 = check_real("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = check_real("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = check_real("epsilon", epsilon, 0.0)
        self.decoupled_weight_decay = check_bool("decoupled_weight_decay",
                                                 decoupled_weight_decay)

    def _slots(self):
        return {"exp_avg": 0.0}

    def _step_constants(self, t, lr):
        return {"lr": lr, "beta_1": self.beta_1, "one_minus_beta_1": 1.0 - self.beta_1,
                "beta_2": self.beta_2, "one_minus_beta_2": 1.0 - self.beta_2,
                "bias_correction_1": 1.0 - self.beta_1 ** t,
                "bias_correction_2": 1.0 - self.beta_2 ** t}

    def _moments(self, p, g, state, lr):
        """The start of Adam's and Nadam's ``reference``: weight decay, then
        m <- b1*m + (1-b1)*g and v <- b2*v + (1-b2)*g^2 in place. Returns (g, m, v)."""
        g = self._decayed(p, g, lr)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m[...] = self.beta_1 * m + (1 - self.beta_1) * g
        v[...] = self.beta_2 * v + (1 - self.beta_2) * g**2
        return g, m, v

    def _hyperparameters(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "decoupled_weight_decay": self.decoupled_weight_decay}


class Adam(_AdamFamily):
    """Adam (Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015);
    AMSGrad from Reddi, Kale & Kumar, "On the convergence of Adam and beyond", ICLR 2018;
    decoupled weight decay (AdamW) from Loshchilov & Hutter, ICLR 2019.

    PyTorch's ``torch.optim.Adam``: m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g^2
    (with ``amsgrad`` v^ <- max(v^, v) is used in place of v);
    theta <- theta - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + epsilon).
    ``weight_decay`` adds wd*theta to the gradient (L2), or with
    ``decoupled_weight_decay=True`` multiplies theta by 1 - lr*wd first (AdamW).
    Epsilon is Algorithm 1's, added to the bias-corrected sqrt(v) as in PyTorch;
    Keras adds it to the uncorrected sqrt(v) (the paper's "epsilon hat").

    Defaults (Keras): epsilon=1e-7. PyTorch: eps=1e-8. Both: learning_rate=0.001,
    beta_1=0.9, beta_2=0.999.
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         decoupled_weight_decay, **kwargs)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _slots(self):
        slots = {**super()._slots(), "exp_avg_sq": 0.0}
        if self.amsgrad:
            slots["max_exp_avg_sq"] = 0.0
        return slots

    def reference(self, p, g, state, t, lr):
        g, m, v = self._moments(p, g, state, lr)
        if self.amsgrad:  # the largest v so far stands in for v
            v_max = state["max_exp_avg_sq"]
            v = np.maximum(v_max, v, out=v_max)
        m_hat = m / (1 - self.beta_1**t)
        v_hat = v / (1 - self.beta_2**t)
        p -= lr * m_hat / (np.sqrt(v_hat) + self.epsilon)

    def _step_constants(self, t, lr):
        k = super()._step_constants(t, lr)
        # sqrt(v)/sqrt(bc2) + eps == (sqrt(v) + eps*sqrt(bc2)) / sqrt(bc2): one division less
        root_bc2 = math.sqrt(k["bias_correction_2"])
        k["epsilon"] = self.epsilon * root_bc2
        k["step"] = -lr * root_bc2 / k["bias_correction_1"]
        return k

    def _update(self, p, g, state, k):
        kernels.adam(p, g, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                     k["l2"], k["decay"], k["beta_1"], k["one_minus_beta_1"], k["beta_2"],
                     k["one_minus_beta_2"], k["epsilon"], k["step"])

    def _hyperparameters(self):
        return {**super()._hyperparameters(), "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled weight decay
    regularization", ICLR 2019): ``Adam(decoupled_weight_decay=True)``, as
    ``torch.optim.AdamW``.

    Defaults: weight_decay=0.01 (PyTorch; Keras 0.004), epsilon=1e-7 (Keras; PyTorch 1e-8).
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, weight_decay: float = 0.01,
                 decoupled_weight_decay: bool = True, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         decoupled_weight_decay, **kwargs)


class Adamax(_AdamFamily):
    """Adamax, Adam's infinity-norm variant (Kingma & Ba, ICLR 2015, section 7.1).

    PyTorch's ``torch.optim.Adamax``: m <- b1*m + (1-b1)*g;
    u <- max(b2*u, |g| + epsilon); theta <- theta - lr/(1-b1^t) * m/u.
    PyTorch adds epsilon to |g| inside the max; Keras computes u = max(b2*u, |g|) and
    divides by u + epsilon.

    Defaults (Keras): learning_rate=0.001, epsilon=1e-7. PyTorch: lr=0.002, eps=1e-8.
    Both: beta_1=0.9, beta_2=0.999.
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         decoupled_weight_decay, **kwargs)

    def _slots(self):
        return {**super()._slots(), "exp_inf": 0.0}

    def reference(self, p, g, state, t, lr):
        g = self._decayed(p, g, lr)
        b1, m, u = self.beta_1, state["exp_avg"], state["exp_inf"]
        m[...] = b1 * m + (1 - b1) * g
        np.maximum(self.beta_2 * u, np.abs(g) + self.epsilon, out=u)
        p -= lr / (1 - b1**t) * (m / u)

    def _step_constants(self, t, lr):
        k = super()._step_constants(t, lr)
        k["epsilon"] = self.epsilon
        k["step"] = -lr / k["bias_correction_1"]
        return k

    def _update(self, p, g, state, k):
        kernels.adamax(p, g, state["exp_avg"], state["exp_inf"], k["l2"], k["decay"],
                       k["beta_1"], k["one_minus_beta_1"], k["beta_2"], k["epsilon"], k["step"])


class Nadam(_AdamFamily):
    """Nadam, Adam with Nesterov momentum (Dozat, "Incorporating Nesterov momentum into
    Adam", ICLR workshop 2016).

    PyTorch's ``torch.optim.NAdam``: mu_t = b1*(1 - 0.5*0.96^(t*momentum_decay)),
    mu_prod <- mu_prod*mu_t; m, v as in Adam; d = sqrt(v/(1-b2^t)) + epsilon;
    theta <- theta - lr*(1-mu_t)/(1-mu_prod) * g/d
    - lr*mu_(t+1)/(1-mu_prod*mu_(t+1)) * m/d. Keras uses the same rule with
    momentum_decay fixed at 0.004.

    Defaults (Keras): learning_rate=0.001, epsilon=1e-7. PyTorch: lr=0.002, eps=1e-8.
    Both: beta_1=0.9, beta_2=0.999, momentum_decay=0.004.
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, momentum_decay: float = 0.004,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay,
                         decoupled_weight_decay, **kwargs)
        self.momentum_decay = check_real("momentum_decay", momentum_decay, 0.0)
        self.mu_product = 1.0

    def _slots(self):
        return {**super()._slots(), "exp_avg_sq": 0.0}

    def _mu(self, t: int) -> float:
        """The momentum of step t: b1 * (1 - 0.5 * 0.96^(t * momentum_decay))."""
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def reference(self, p, g, state, t, lr):
        g, m, v = self._moments(p, g, state, lr)
        mu, mu_next = self._mu(t), self._mu(t + 1)
        mu_product = math.prod(self._mu(i) for i in range(1, t + 1))  # mu_1 * ... * mu_t
        # Nesterov: the gradient with this step's momentum, m with the next step's
        grad_coef = (1 - mu) / (1 - mu_product)
        exp_avg_coef = mu_next / (1 - mu_product * mu_next)
        v_hat = v / (1 - self.beta_2**t)
        p -= lr * (grad_coef * g + exp_avg_coef * m) / (np.sqrt(v_hat) + self.epsilon)

    def _step_constants(self, t, lr):
        k = super()._step_constants(t, lr)
        mu, mu_next = self._mu(t), self._mu(t + 1)
        self.mu_product *= mu
        grad_coef = (1.0 - mu) / (1.0 - self.mu_product)
        exp_avg_coef = mu_next / (1.0 - self.mu_product * mu_next)
        # d = sqrt(v/bc2) + eps, kept as sqrt(bc2)*d = sqrt(v) + eps*sqrt(bc2)
        root_bc2 = math.sqrt(k["bias_correction_2"])
        k["epsilon"] = self.epsilon * root_bc2
        k["exp_avg_ratio"] = exp_avg_coef / grad_coef
        k["step"] = -lr * grad_coef * root_bc2
        return k

    def _update(self, p, g, state, k):
        kernels.nadam(p, g, state["exp_avg"], state["exp_avg_sq"], k["l2"], k["decay"],
                      k["beta_1"], k["one_minus_beta_1"], k["beta_2"], k["one_minus_beta_2"],
                      k["epsilon"], k["exp_avg_ratio"], k["step"])

    def _scalar_state(self):
        return {"mu_product": self.mu_product}

    def _load_scalar_state(self, state):
        self.mu_product = float(state["mu_product"])

    def _hyperparameters(self):
        return {**super()._hyperparameters(), "momentum_decay": self.momentum_decay}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__.lower(): cls for cls in (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Adamax,
                                          Nadam)}


def get(identifier) -> Optimizer:
    """An optimizer from a name ("adam", case-insensitive, default hyper-parameters), an
    ``Optimizer`` (returned as is) or a config dict ``{"name": ..., **kwargs}`` as written
    by ``get_config``."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        name, kwargs = identifier, {}
    elif isinstance(identifier, dict):
        if "name" not in identifier:
            raise ValueError(f"optimizer config {identifier!r} has no 'name'; "
                             f"valid names: {sorted(OPTIMIZERS)}")
        kwargs = dict(identifier)
        name = kwargs.pop("name")
    else:
        raise TypeError(f"optimizer must be a name, an Optimizer or a config dict, got "
                        f"{identifier!r} ({type(identifier).__name__})")
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {sorted(OPTIMIZERS)}")
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = schedules.get(kwargs["learning_rate"])
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"bad arguments for optimizer {cls.__name__}: {err}") from err
