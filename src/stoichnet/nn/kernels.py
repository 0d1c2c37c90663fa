"""The engine's fused loops (numba kernels) and the threads that share them.

Why: an optimizer update over ElemNet-17's 4.6 M parameters, or a bias + ReLU over a
(batch, 1024) activation, is memory-bound. A sequence of NumPy ufuncs makes one pass over
memory per operation (~12 for Adam); a kernel here reads every element once and writes it
once, as PyTorch's ``fused=True`` optimizers do. The loop body is the rule written for one
element. Each kernel has a plain NumPy reference beside the code that calls it, written as
the paper or the lecture writes the formula, and the tests hold kernel and reference equal
(``tests/nn/test_kernels.py``): ``Optimizer.reference`` in ``optimizers.py`` for the update
rules, ``relu`` and ``relu_derivative`` in ``activations.py`` for the fused ReLU, and
``Dense.reference_forward`` / ``reference_backward`` for the layer that uses it.

Every kernel is compiled on first use (and cached on disk), releases the GIL, computes in
the dtype of its arrays with its scalar arguments already rounded to that dtype (as NumPy
rounds a Python scalar) and without fused multiply-adds, so each result is the IEEE result
of the loop body's formula. x/0 gives inf or nan, as in NumPy. Moments below the smallest
normal number of their dtype (1.2e-38 in float32) are stored as zero: a unit whose gradient
is exactly zero would otherwise decay its moments into subnormals, which x86 CPUs compute
several times slower. With the default epsilons the update such a moment would make is
below 1e-30 of a learning rate, far below the resolution of any parameter not itself near 0.
PyTorch keeps subnormals, and so do the references.

Threads: ``for_each_chunk`` cuts arrays into chunks of ``CHUNK_BYTES`` that a few threads
share. Every element sees the same operations, in the same order, whatever the chunking, so
results do not depend on the number of threads. ``thread_limit`` caps that number for the
current context (the CLI's ``--threads``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from functools import cache

import numba
import numpy as np

from stoichnet.util.checks import check_int

CHUNK_BYTES = 4 << 20  # per array: the unit of work the threads share

# error_model="numpy": x/0 gives inf or nan as in NumPy (and lets the loop vectorise)
_kernel = numba.njit(nogil=True, cache=True, error_model="numpy")


# --- threads ------------------------------------------------------------------------------
# a context variable, not a global: a limit set in one thread or task leaves the others alone
_thread_limit: ContextVar[int | None] = ContextVar("stoichnet_thread_limit", default=None)


@contextlib.contextmanager
def thread_limit(n_threads: int):
    """Within the block, updates that do not name a thread count (optimizers built with
    ``num_threads=None``) use ``n_threads`` threads (the CLI's ``--threads`` sets it
    together with the BLAS limit)."""
    token = _thread_limit.set(check_int("n_threads", n_threads, 1))
    try:
        yield
    finally:
        _thread_limit.reset(token)


def default_num_threads() -> int:
    """The ``thread_limit`` in effect, else the CPUs available to this process, at most 4."""
    limit = _thread_limit.get()
    if limit is not None:
        return limit
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 4))


@cache
def _thread_pool(n_threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="stoichnet-kernel")


# a forked child inherits the pool object but not its threads: give it a fresh one
os.register_at_fork(after_in_child=_thread_pool.cache_clear)


class _LockedIterator:
    """An iterator several threads can share."""

    def __init__(self, items):
        self._items = iter(items)
        self._lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        with self._lock:
            return next(self._items)


Chunk = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int, int]


def for_each_chunk(update: Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray]], None],
                   params: list[np.ndarray], grads: list[np.ndarray],
                   states: list[dict[str, np.ndarray]], num_threads: int | None = None) -> None:
    """Call ``update(p, g, state)`` on consecutive chunks of every parameter, in threads.

    Args:
        update: updates in place ``p`` (a 1-D view of a chunk of ``params[i]``) from ``g``
            (the same chunk of ``grads[i]``) and ``state`` (name -> the same chunk of each
            array of ``states[i]``).
        params: C-contiguous arrays, any shapes; grads: arrays of the same shapes.
        states: per parameter, name -> 1-D array of ``params[i].size`` elements.
        num_threads: threads sharing the chunks, the calling one included; None:
            ``default_num_threads()``. Fewer are used when there are few chunks.
    """
    tasks: list[Chunk] = []
    for p, g, state in zip(params, grads, states, strict=True):
        chunk = CHUNK_BYTES // p.itemsize
        for start in range(0, p.size, chunk):
            tasks.append((p, g, state, start, min(start + chunk, p.size)))
    n_workers = min(num_threads or default_num_threads(), len(tasks) // 2)
    if n_workers <= 1:
        _run(update, iter(tasks))
        return
    # workers take the next chunk when free, so a thread the OS delays costs no more than its
    # current chunk; the calling thread is worker 0
    queue = _LockedIterator(tasks)
    pool = _thread_pool(n_workers - 1)
    futures = [pool.submit(_run, update, queue) for _ in range(1, n_workers)]
    _run(update, queue)
    for future in futures:
        future.result()


def _run(update, tasks: Iterator[Chunk]) -> None:
    """Apply ``update`` to the chunks ``(p, g, state, start, stop)`` drawn from ``tasks``."""
    for p, g, state, start, stop in tasks:
        update(p.reshape(-1)[start:stop], g.reshape(-1)[start:stop],
               {name: arr[start:stop] for name, arr in state.items()})


# --- pieces shared by the optimizer kernels -------------------------------------------------
@_kernel
def _grad(p, g, i, l2):
    """g[i] + l2 * p[i]: the gradient with PyTorch's (L2) ``weight_decay``."""
    return g[i] + p[i] * l2 if l2 else g[i]


@_kernel
def _flush(x):
    """x, or 0 where |x| is below the smallest normal number of its dtype."""
    return x if abs(x) >= np.finfo(x).tiny else x - x


@_kernel
def _ema(avg, i, x, decay, one_minus_decay):
    """avg[i] <- decay * avg[i] + (1 - decay) * x (flushed to 0 below normals); returns it."""
    value = _flush(avg[i] * decay + x * one_minus_decay)
    avg[i] = value
    return value


# --- optimizer kernels: 1-D arrays; l2: PyTorch's weight decay; decay: AdamW's factor ------
@_kernel
def sgd(p, g, b, l2, lr, momentum, nesterov):
    """SGD; ``b`` is the momentum buffer, None without momentum."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        if b is not None:
            bi = _flush(b[i] * momentum + gi)
            b[i] = bi
            gi = bi * momentum + gi if nesterov else bi
        p[i] += gi * -lr


@_kernel
def rmsprop(p, g, v, a, b, l2, lr, rho, one_minus_rho, epsilon, momentum):
    """RMSprop; ``a`` (centred: the mean gradient) and ``b`` (momentum) may be None."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        vi = _ema(v, i, gi * gi, rho, one_minus_rho)
        if a is not None:
            ai = _ema(a, i, gi, rho, one_minus_rho)
            vi = vi - ai * ai
        d = gi / (np.sqrt(vi) + epsilon)
        if b is not None:
            d = _flush(b[i] * momentum + d)
            b[i] = d
        p[i] += d * -lr


@_kernel
def adagrad(p, g, s, l2, lr, epsilon):
    """Adagrad; ``s`` is the sum of squared gradients."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        si = s[i] + gi * gi
        s[i] = si
        p[i] += gi / (np.sqrt(si) + epsilon) * -lr


@_kernel
def adadelta(p, g, v, u, l2, lr, rho, one_minus_rho, epsilon):
    """Adadelta; ``v``, ``u``: running means of g^2 and of delta^2."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        vi = _ema(v, i, gi * gi, rho, one_minus_rho)
        delta = np.sqrt(u[i] + epsilon) / np.sqrt(vi + epsilon) * gi
        _ema(u, i, delta * delta, rho, one_minus_rho)
        p[i] += delta * -lr


@_kernel
def adam(p, g, m, v, v_max, l2, decay, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2,
         epsilon, step):
    """Adam; ``v_max`` (AMSGrad) may be None. The bias corrections are folded into
    ``epsilon`` = eps * sqrt(1 - b2^t) and ``step`` = -lr * sqrt(1 - b2^t) / (1 - b1^t)
    (see ``Adam._step_constants``)."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        mi = _ema(m, i, gi, beta_1, one_minus_beta_1)
        vi = _ema(v, i, gi * gi, beta_2, one_minus_beta_2)
        if v_max is not None:
            vi = v_max[i] if v_max[i] >= vi else vi  # np.maximum: a NaN in v wins
            v_max[i] = vi
        p[i] = p[i] * decay + mi / (np.sqrt(vi) + epsilon) * step


@_kernel
def adamax(p, g, m, u, l2, decay, beta_1, one_minus_beta_1, beta_2, epsilon, step):
    """Adamax; ``u`` is the exponentially weighted infinity norm; ``step`` = -lr / (1 - b1^t)."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        mi = _ema(m, i, gi, beta_1, one_minus_beta_1)
        ui = u[i] * beta_2
        norm = abs(gi) + epsilon
        ui = ui if ui >= norm else norm  # np.maximum: a NaN gradient wins
        u[i] = ui
        p[i] = p[i] * decay + mi / ui * step


@_kernel
def nadam(p, g, m, v, l2, decay, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2,
          epsilon, exp_avg_ratio, step):
    """Nadam: theta -= lr*grad_coef*(g + exp_avg_ratio*m)/d, with the coefficients and the
    bias correction folded into ``epsilon``, ``exp_avg_ratio`` and ``step`` (see
    ``Nadam._step_constants``)."""
    for i in range(p.size):
        gi = _grad(p, g, i, l2)
        mi = _ema(m, i, gi, beta_1, one_minus_beta_1)
        vi = _ema(v, i, gi * gi, beta_2, one_minus_beta_2)
        p[i] = p[i] * decay + (mi * exp_avg_ratio + gi) / (np.sqrt(vi) + epsilon) * step


# --- the dense layer's fused (leaky) ReLU --------------------------------------------------
@_kernel
def relu_plus_bias(z, b, slope):
    """z <- z + b where it is >= 0, else slope · (z + b), in one pass (slope 0: ReLU, whose
    negative side is written v - v, +0, as max(v, 0) gives it; leaky ReLU: slope 0.01).
    z: (n, units), b: (units,), slope: a scalar of z's dtype. NaN stays NaN."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[i, j] + b[j]
            if v < 0:
                v = v * slope if slope != 0 else v - v
            z[i, j] = v


@_kernel
def relu_backward(da, a, slope, dz):
    """dz <- da where a > 0, else slope · da, in one pass (slope 0: ReLU, written da - da);
    1-D arrays of one size, slope a scalar of their dtype. A non-finite da stays
    non-finite (inf - inf is NaN), as da * 0 would."""
    for i in range(dz.size):
        g = da[i]
        if not a[i] > 0:
            g = g * slope if slope != 0 else g - g
        dz[i] = g


@_kernel
def gather_add(x, y, rows_x, rows_y, out):
    """out[r] = x[rows_x[r]] + y[rows_y[r]] in one pass (rows of a pair from the rows of
    its two members). x, y: (M, k); rows_x, rows_y: (R,) ints; out: (R, k). Reference:
    ``x[rows_x] + y[rows_y]``."""
    for r in range(out.shape[0]):
        i, j = rows_x[r], rows_y[r]
        for c in range(out.shape[1]):
            out[r, c] = x[i, c] + y[j, c]


# --- sums over runs of rows (the set layers' groups) --------------------------------------
@_kernel
def run_sums(x, order, starts, out):
    """out[g] = Σ x[order[r]] over r in run g, the rows starts[g] .. starts[g+1] - 1 of
    ``order`` (the last run to its end), summed in row order. x: (R', k); order: (R,)
    int rows of x; starts: (G,) increasing, starts[0] = 0; out: (G, k). Reference: the
    rows added one by one (``np.add.reduceat(x[order], starts, axis=0)`` up to its blocked
    summation order; it is several times slower on runs of a few rows, a member's pairs)."""
    n_runs, n_rows = starts.shape[0], order.shape[0]
    for g in range(n_runs):
        end = starts[g + 1] if g + 1 < n_runs else n_rows
        for c in range(x.shape[1]):
            out[g, c] = 0
        for r in range(starts[g], end):
            i = order[r]
            for c in range(x.shape[1]):
                out[g, c] += x[i, c]
