"""Training state: everything ``Sequential.fit`` needs to stop and continue a run exactly.

``TrainingState`` is the one component that ``fit`` hands its checkpoint, resume and
interrupt plumbing to. ``fit(..., checkpoint="run.ckpt", checkpoint_every=N)`` writes
one after every N-th epoch, after the last epoch (or the one where a callback stopped
training) and when Ctrl-C (or ``model.interrupt()``) stops ``fit``; ``fit(...,
resume="run.ckpt")`` continues from it. A resumed run draws the same shuffles and
dropout masks as an uninterrupted one, so its final weights are bit-identical (same
data, batch size and machine).

A checkpoint is written at an epoch boundary, or, after Ctrl-C, between two batches:
then it also holds the epoch's permutation, the number of batches done and the
running loss/metric sums. It holds the weights, the optimizer's state
(``state_dict``: its step count and ``lr_multiplier`` included, which is how the
learning-rate callbacks act), the generator state (``model.rng.bit_generator.state``),
the number of epochs done, the History and each user callback's ``get_state()``.
Non-finite weights or optimizer state are never written.

File format: an ``nn.archive`` archive (one ``.npz``, JSON config, SHA-256 over config
and arrays, never pickle), written crash-safely, so a crash mid-write leaves the
previous checkpoint intact. Reading a truncated, altered or foreign file raises
``ModelFileError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stoichnet.util.checks import check_int
from stoichnet.util.signals import graceful_sigint

from .archive import check_format, read_archive, write_archive
from .errors import ModelFileError, TrainingDivergedError, TrainingInterrupted

FORMAT = "stoichnet.checkpoint"
FORMAT_VERSION = 1
WHAT = "stoichnet checkpoint"
# only these bit generators can be named by a file (never an arbitrary attribute of numpy)
BIT_GENERATORS = {name: getattr(np.random, name)
                  for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}


@dataclass
class Progress:
    """Where ``fit`` stands.

    Attributes:
        epoch: epochs completed (0-based index of the epoch in progress).
        batch: batches of that epoch completed (0 at an epoch boundary).
        order: (n_samples,) int64 permutation of the epoch in progress, or None
            (at a boundary, or without shuffling).
        totals: running sums over the epoch's batches of loss/metric x batch size.
        seen: samples of the epoch seen so far.
        stop_training: a callback had asked ``fit`` to stop.
    """

    epoch: int = 0
    batch: int = 0
    order: np.ndarray | None = None
    totals: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    stop_training: bool = False


def _split_arrays(prefix: str, state: dict, arrays: dict) -> dict:
    """``state`` with numpy arrays moved into ``arrays`` under ``prefix + key``."""
    plain = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            arrays[prefix + key] = value
            plain[key] = {"array": prefix + key}
        else:
            plain[key] = value  # numpy scalars become numbers in archive.write_archive
    return plain


def _join_arrays(state: dict, arrays: dict) -> dict:
    return {key: arrays[value["array"]] if isinstance(value, dict) and set(value) == {"array"}
            else value for key, value in state.items()}


def _json_rng_state(state):
    """``bit_generator.state`` with arrays (MT19937's key) as lists."""
    if isinstance(state, dict):
        return {key: _json_rng_state(value) for key, value in state.items()}
    return state.tolist() if isinstance(state, np.ndarray) else state


def data_digest(X: np.ndarray, y: np.ndarray, validation) -> str:
    """SHA-256 of the training arrays and the validation pair (if any): a resumed run
    must see the data of the run it continues."""
    digest = hashlib.sha256()
    for arr in (X, y, *(validation or ())):
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(np.ascontiguousarray(arr).data)
    return digest.hexdigest()


def save_checkpoint(path, model, progress: Progress, callbacks, fit_params: dict) -> None:
    """Write ``model``'s training state at ``progress`` to ``path`` (replacing it).

    Args:
        callbacks: the user's callbacks, in ``fit`` order (not History or the progress bar).
        fit_params: ``{"batch_size", "n_samples", "shuffle", "data_sha256"}`` of the run,
            checked on resume.
    Raises ``TrainingDivergedError`` instead of writing non-finite weights or optimizer
    state, so the previous checkpoint stays the last good one.
    """
    optimizer_state = model.optimizer.state_dict()
    arrays = {"weights": model.flat_params}
    for key, value in [("weights", model.flat_params), *optimizer_state.items()]:
        if isinstance(value, np.ndarray) and not np.isfinite(value).all():
            what = "weights" if key == "weights" else f"optimizer state {key!r}"
            raise TrainingDivergedError(
                f"the {what} became non-finite in epoch {progress.epoch + (progress.batch == 0)}; "
                f"training stopped and the last good checkpoint {path} was kept. Likely cause: "
                f"the learning rate ({model.optimizer.current_learning_rate:g}) is too high",
                progress.epoch, None, float("nan"),
            )
    if progress.order is not None:
        arrays["order"] = progress.order.astype(np.int64)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.get_config(),
        "compile": model.get_compile_config(),
        "optimizer_state": _split_arrays("optimizer.", optimizer_state, arrays),
        "rng": _json_rng_state(model.rng.bit_generator.state),
        "progress": {"epoch": progress.epoch, "batch": progress.batch,
                     "totals": progress.totals, "seen": progress.seen,
                     "stop_training": progress.stop_training},
        "fit": fit_params,
        "history": {"epoch": model.history.epoch, "history": model.history.history},
        "callbacks": [{"class_name": type(cb).__name__,
                       "state": _split_arrays(f"callback{i}.", cb.get_state(), arrays)}
                      for i, cb in enumerate(callbacks)],
    }
    write_archive(path, config, arrays, overwrite=True)


def load_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a checkpoint: (config, arrays). ``ModelFileError`` if it is not
    an intact stoichnet checkpoint of this format version."""
    config, arrays = read_archive(path, WHAT)
    check_format(path, config, FORMAT, FORMAT_VERSION, WHAT)
    return config, arrays


def _first_difference(a, b, where: str = ""):
    """(path, a's value, b's value) at the first place two JSON-like configurations
    differ, e.g. ("layers[0].config.units", 12, 8), a missing key or list item given as
    "absent"; None if they are equal. A dict's "class_name" and "name" are compared first:
    another optimizer is reported as such, not as the first option only one of them has."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted([*a, *(k for k in b if k not in a)],
                      key=lambda k: k not in ("class_name", "name"))
        for key in keys:
            here = f"{where}.{key}" if where else key
            if key not in a or key not in b:
                return here, a.get(key, "absent"), b.get(key, "absent")
            found = _first_difference(a[key], b[key], here)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            if i >= len(a) or i >= len(b):
                return (f"{where}[{i}]", a[i] if i < len(a) else "absent",
                        b[i] if i < len(b) else "absent")
            found = _first_difference(a[i], b[i], f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else (where, a, b)


def _short(value, limit: int = 200) -> str:
    """repr of ``value`` cut to ``limit`` characters (an embedding table is megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _require_same(path, what: str, saved, ours) -> None:
    """``ValueError`` naming the first setting where the checkpoint's ``saved``
    configuration and this model's ``ours`` differ, if they do."""
    found = _first_difference(saved, ours)
    if found:
        where, theirs, mine = found
        raise ValueError(f"checkpoint {path} was written for {what}: its "
                         f"{where or 'configuration'} is {_short(theirs)}, this model's "
                         f"{_short(mine)}")


def _checked_weights(path, config: dict, arrays: dict, model) -> np.ndarray:
    """The flat weights of checkpoint ``path``, after checking that they were written for
    ``model``'s architecture (``ValueError``) and fit its parameter vector
    (``ModelFileError``)."""
    _require_same(path, "another architecture", config["model"], model.get_config())
    weights = arrays["weights"]
    if weights.dtype != model.dtype or weights.shape != model.flat_params.shape:
        raise ModelFileError(f"{path} holds weights {weights.dtype} {weights.shape}, the "
                             f"model needs {model.dtype} {model.flat_params.shape}")
    return weights


def load_checkpoint_weights(path, model) -> None:
    """Copy only the weights of checkpoint ``path`` into the built ``model`` of the same
    architecture: a warm start, where training continues from a finished run's weights
    with a fresh optimizer, schedule and history (to continue the run itself, pass
    ``resume=`` to ``fit``). ``ValueError`` for another architecture, ``ModelFileError``
    for a broken file."""
    config, arrays = load_checkpoint(path)
    try:
        model.flat_params[...] = _checked_weights(path, config, arrays, model)
    except (KeyError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{path} has an invalid checkpoint description: {err!r}") from None


def restore(path, model, callbacks, fit_params: dict) -> Progress:
    """Load the checkpoint at ``path`` into ``model`` (weights, optimizer state, generator,
    History) and ``callbacks`` (after their ``on_train_begin``); returns its ``Progress``.

    Raises ``ModelFileError`` for a broken file and ``ValueError`` when the checkpoint
    belongs to another architecture, compile settings, callback list, data, batch size
    or shuffle setting.
    """
    config, arrays = load_checkpoint(path)
    try:
        weights = _checked_weights(path, config, arrays, model)
        _require_same(path, "other compile settings", config["compile"],
                      model.get_compile_config())
        names = [entry["class_name"] for entry in config["callbacks"]]
        if names != [type(cb).__name__ for cb in callbacks]:
            raise ValueError(f"checkpoint {path} was written with callbacks {names}; pass the "
                             f"same kinds in the same order, got "
                             f"{[type(cb).__name__ for cb in callbacks]}")
        p = config["progress"]
        progress = Progress(int(p["epoch"]), int(p["batch"]), arrays.get("order"),
                            dict(p["totals"]), int(p["seen"]), bool(p["stop_training"]))
        if config["fit"] != fit_params:
            raise ValueError(f"checkpoint {path} belongs to a run with {config['fit']}; resume "
                             f"continues the same run: same data, batch_size and shuffle, got "
                             f"{fit_params}")
        rng_state = config["rng"]
        bit_generator = BIT_GENERATORS.get(rng_state.get("bit_generator"))
        if bit_generator is None:
            raise ModelFileError(f"{path} names bit generator {rng_state.get('bit_generator')!r};"
                                 f" allowed: {sorted(BIT_GENERATORS)}")
        order = progress.order
        if order is not None and (order.shape != (fit_params["n_samples"],) or not np.array_equal(
                np.sort(order), np.arange(fit_params["n_samples"]))):
            raise ModelFileError(f"{path} holds an epoch order that is not a permutation of "
                                 f"{fit_params['n_samples']} samples")
        generator = bit_generator()
        try:
            generator.state = rng_state
            model.optimizer.load_state_dict(_join_arrays(config["optimizer_state"], arrays))
        except ValueError as err:
            raise ModelFileError(f"{path} has an invalid training state: {err}") from None
        model.flat_params[...] = weights
        model._set_rng(np.random.Generator(generator))
        model.history.epoch = list(config["history"]["epoch"])
        model.history.history = {k: list(v) for k, v in config["history"]["history"].items()}
        for cb, entry in zip(callbacks, config["callbacks"], strict=True):
            cb.set_state(_join_arrays(entry["state"], arrays))
    except (KeyError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{path} has an invalid checkpoint description: {err!r}") from None
    return progress


class TrainingState:
    """Checkpoint, resume and interrupt for one ``fit`` call, so that ``fit`` itself
    shows only the training loop.

    ``fit`` creates it before touching the data (bad paths fail at once), enters
    ``run`` after the callbacks' ``on_train_begin``, and reports to it after every
    batch (``batch_done``) and every epoch (``epoch_done``).

    Args:
        model: the ``Sequential`` being trained.
        checkpoint: path written atomically when due (see the module docstring), or None.
        checkpoint_every: write after every this many epochs (and always at the end).
        resume: path of a checkpoint to continue from, or None.
    Attributes:
        start: the ``Progress`` the run starts from (epoch 0 unless resumed).
    """

    def __init__(self, model, checkpoint=None, checkpoint_every: int = 1, resume=None):
        self.checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint is not None and not Path(checkpoint).parent.is_dir():
            raise FileNotFoundError(f"checkpoint={str(checkpoint)!r}: the folder "
                                    f"{str(Path(checkpoint).parent)!r} does not exist")
        if resume is not None and not Path(resume).is_file():
            raise FileNotFoundError(f"resume={str(resume)!r}: no checkpoint file there")
        self.model, self.path, self.resume = model, checkpoint, resume
        self.start = Progress()
        self.callbacks: list = []
        self.fit_params: dict = {}

    @contextmanager
    def run(self, callbacks, X, y, validation, batch_size: int, shuffle: bool) -> Iterator[None]:
        """Restore the ``resume`` checkpoint (if any) into the model and ``callbacks`` (the
        user's, after their ``on_train_begin``), then, while the body runs, turn the first
        Ctrl-C into ``model.interrupt()`` (``util.signals.graceful_sigint``).

        Raises ``ValueError`` when the checkpoint belongs to other data (X, y and the
        validation pair), settings or callbacks; ``ModelFileError`` for a broken file.
        """
        self.callbacks = list(callbacks)
        self.fit_params = {"batch_size": batch_size, "n_samples": X.shape[0],
                           "shuffle": bool(shuffle)}
        if self.path is not None or self.resume is not None:
            self.fit_params["data_sha256"] = data_digest(X, y, validation)
        if self.resume is not None:
            self.start = restore(self.resume, self.model, self.callbacks, self.fit_params)
            self.model.stop_training = self.start.stop_training
        with graceful_sigint(self.model.interrupt):
            yield

    def resumed_batches(self, epoch: int) -> Progress | None:
        """The saved position when the run resumes in the middle of ``epoch``: its order,
        batches done and running sums; None otherwise (the epoch starts afresh)."""
        return self.start if epoch == self.start.epoch and self.start.batch else None

    def batch_done(self, epoch: int, batch: int, order, totals: dict, seen: int) -> None:
        """After batch ``batch`` of ``epoch``: if an interrupt was asked for, write the
        checkpoint of this mid-epoch position and raise ``TrainingInterrupted``."""
        if self.model.interrupt_requested:
            raise self._interrupted(Progress(epoch, batch + 1, order, totals, seen))

    def epoch_done(self, epoch: int, epochs: int) -> None:
        """After ``epoch`` (its callbacks' ``on_epoch_end`` included): write the checkpoint
        when due (every ``checkpoint_every``-th, the last, an early stop); after an
        interrupt also raise ``TrainingInterrupted``."""
        done = Progress(epoch + 1, stop_training=self.model.stop_training)
        if self.path is not None and ((epoch + 1) % self.checkpoint_every == 0
                                      or epoch + 1 == epochs or done.stop_training):
            save_checkpoint(self.path, self.model, done, self.callbacks, self.fit_params)
        if self.model.interrupt_requested:
            raise self._interrupted(done)

    def _interrupted(self, progress: Progress) -> TrainingInterrupted:
        """Write the checkpoint (if any) and return the ``TrainingInterrupted`` to raise."""
        where = (f"in epoch {progress.epoch + 1} after batch {progress.batch}" if progress.batch
                 else f"after epoch {progress.epoch}")
        if self.path is None:
            how = "no checkpoint was asked for (fit(..., checkpoint=PATH) makes one)"
        else:
            save_checkpoint(self.path, self.model, progress, self.callbacks, self.fit_params)
            how = f"saved {self.path}; continue with fit(..., resume={str(self.path)!r})"
        return TrainingInterrupted(f"training interrupted {where}: {how}", progress.epoch,
                                   progress.batch, self.path)
