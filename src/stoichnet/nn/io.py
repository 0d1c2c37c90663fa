"""Model files: one ``.npz`` archive, written and read without pickle.

Members (all plain arrays, so ``numpy.load(..., allow_pickle=False)`` reads them):

- ``config``: UTF-8 JSON, a uint8 array: ``{"format": "stoichnet.model",
  "format_version": 1, "model": Sequential.get_config(), "compile": {"loss",
  "metrics", "optimizer" (its get_config)} or null}``;
- ``weights``: the model's ``flat_params`` (layer order, see ``Sequential``);
- ``sha256``: hex digest (uint8 array) of the config bytes followed by the
  little-endian weight bytes, so any change to either is detected.

Checkpoints (``nn.checkpoint``) use the same family: ``write_archive`` /
``read_archive`` with more arrays, each covered by the digest.

Loading only constructs layer classes named in ``layers.base.LAYERS`` from
plain JSON values: no code from the file is executed. Every problem is a
``ModelFileError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import losses, optimizers, sequential
from .errors import ModelFileError

FORMAT = "stoichnet.model"
FORMAT_VERSION = 1
RESERVED = ("config", "sha256")


def _digest(config_bytes: bytes, *arrays: np.ndarray) -> str:
    """SHA-256 of the config bytes followed by each array's little-endian bytes."""
    digest = hashlib.sha256(config_bytes)
    for arr in arrays:
        digest.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_scalar(value):
    """numpy scalars (e.g. a float32 a callback logged) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored in a model file or "
                    "checkpoint; use numbers, strings, lists and dicts")


def write_archive(path, config: dict, arrays: dict[str, np.ndarray], overwrite: bool = False) -> None:
    """Write an ``.npz`` of ``config`` (JSON), ``arrays`` and their SHA-256, atomically.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, then
    ``os.replace`` puts it at ``path`` and the folder is fsynced: a crash at any moment
    leaves either the previous file or the new one, never a mix. The digest covers the
    config and the arrays in sorted name order. Refuses an existing ``path`` unless
    ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    clash = set(RESERVED) & set(arrays)
    if clash:
        raise ValueError(f"array names {sorted(clash)} are reserved")
    config_bytes = json.dumps(config, sort_keys=True, default=_json_scalar).encode("utf-8")
    digest = _digest(config_bytes, *(arrays[name] for name in sorted(arrays)))
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                config=np.frombuffer(config_bytes, dtype=np.uint8),
                sha256=np.frombuffer(digest.encode("ascii"), dtype=np.uint8),
                **arrays,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def read_archive(path, what: str = "stoichnet model file") -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a ``write_archive`` file: (config, arrays by name).

    Never unpickles. A file that is not such an archive, is truncated or corrupted,
    carries pickled data or fails its SHA-256 raises ``ModelFileError`` naming ``path``
    and calling it ``what``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a {what} (not an .npz archive; truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        stems = [name.removesuffix(".npy") for name in names]
        if any(not name.endswith(".npy") for name in names) or not set(RESERVED) <= set(stems):
            raise ModelFileError(f"{path} is not a {what}: it holds {sorted(names)}")
        with np.load(path, allow_pickle=False) as data:
            members = {name: data[name] for name in stems}
    except ModelFileError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise ModelFileError(f"{path} carries pickled data, which is never loaded") from None
        raise ModelFileError(f"{path} is corrupted: {err}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as err:
        raise ModelFileError(f"{path} is corrupted or truncated: {err}") from None
    config_arr, sha = members.pop("config"), members.pop("sha256")
    if config_arr.dtype != np.uint8 or sha.dtype != np.uint8:
        raise ModelFileError(f"{path} is not a {what} (unexpected member types)")
    config_bytes = config_arr.tobytes()
    expected = _digest(config_bytes, *(members[name] for name in sorted(members)))
    if sha.tobytes().decode("ascii", "replace") != expected:
        raise ModelFileError(f"{path} is corrupted: its SHA-256 does not match its contents")
    try:
        config = json.loads(config_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path} has an unreadable config ({err})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} is not a {what} (its config is not a JSON object)")
    return config, members


def check_format(path, config: dict, fmt: str, version: int, what: str) -> None:
    """ModelFileError unless ``config`` declares format ``fmt`` at ``version``."""
    if config.get("format") != fmt:
        raise ModelFileError(f"{path} is not a {what} (format is not {fmt!r})")
    if config.get("format_version") != version:
        raise ModelFileError(
            f"{path} has format_version {config.get('format_version')!r}; this stoichnet "
            f"reads version {version}"
        )


def compile_config(model) -> dict | None:
    """JSON description of ``model.compile`` (loss, metrics, optimizer), None if uncompiled."""
    if model.loss is None:
        return None
    return {"loss": model.loss.name, "metrics": list(model.metrics),
            "optimizer": model.optimizer.get_config()}


def save_model(model, path, overwrite: bool = False) -> None:
    """Write ``model`` (built) to ``path`` atomically (see ``write_archive``).
    Refuses an existing ``path`` unless ``overwrite``."""
    model._require_built("save")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.get_config(),
        "compile": compile_config(model),
    }
    write_archive(path, config, {"weights": model.flat_params}, overwrite=overwrite)


def load_model(path) -> sequential.Sequential:
    """Read a model written by ``save_model``: architecture, weights and (if it was
    compiled) loss, metrics and optimizer hyper-parameters (not optimizer state)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    config, arrays = read_archive(path)
    if set(arrays) != {"weights"}:
        raise ModelFileError(
            f"{path} is not a stoichnet model file: it holds arrays {sorted(arrays)}, "
            "expected ['weights']"
        )
    check_format(path, config, FORMAT, FORMAT_VERSION, "stoichnet model file")
    try:
        return build_model(config["model"], config["compile"], arrays["weights"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path} has an invalid model description: {err}") from None


def build_model(model_config: dict, compiled: dict | None, weights: np.ndarray):
    """A ``Sequential`` from ``get_config``, ``compile_config`` and ``flat_params``;
    ValueError/TypeError/KeyError when they do not fit together."""
    model = sequential.Sequential.from_config(model_config)
    if weights.dtype != model.dtype or weights.shape != (model.count_params(),):
        raise ValueError(
            f"weights are {weights.dtype} {weights.shape}, the architecture needs "
            f"{model.dtype} ({model.count_params()},)"
        )
    model.flat_params[...] = weights
    if compiled is not None:
        model.compile(
            optimizers.get(compiled["optimizer"]), losses.get(compiled["loss"]), compiled["metrics"]
        )
    return model
