"""Model files: one ``.npz`` archive, written and read without pickle.

Members (all plain arrays, so ``numpy.load(..., allow_pickle=False)`` reads them):

- ``config``: UTF-8 JSON, a uint8 array: ``{"format": "stoichnet.model",
  "format_version": 1, "model": Sequential.get_config(), "compile": {"loss",
  "metrics", "optimizer" (its get_config)} or null}``;
- ``weights``: the model's ``flat_params`` (layer order, see ``Sequential``);
- ``sha256``: hex digest (uint8 array) of the config bytes followed by the
  little-endian weight bytes, so any change to either is detected.

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
MEMBERS = {"config.npy", "weights.npy", "sha256.npy"}


def _digest(config_bytes: bytes, weights: np.ndarray) -> str:
    little = weights.astype(weights.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(config_bytes + little.tobytes()).hexdigest()


def save_model(model, path, overwrite: bool = False) -> None:
    """Write ``model`` (built) to ``path`` atomically: a temporary file in the same
    folder, fsync, then rename. Refuses an existing ``path`` unless ``overwrite``."""
    model._require_built("save")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    compiled = None
    if model.loss is not None:
        compiled = {
            "loss": model.loss.name,
            "metrics": list(model.metrics),
            "optimizer": model.optimizer.get_config(),
        }
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.get_config(),
        "compile": compiled,
    }
    config_bytes = json.dumps(config, sort_keys=True).encode("utf-8")
    weights = model.flat_params
    digest = _digest(config_bytes, weights)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                config=np.frombuffer(config_bytes, dtype=np.uint8),
                weights=weights,
                sha256=np.frombuffer(digest.encode("ascii"), dtype=np.uint8),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_members(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a stoichnet model file (not an .npz archive; truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if names != MEMBERS:
                raise ModelFileError(
                    f"{path} is not a stoichnet model file: it holds {sorted(names)}, "
                    f"expected {sorted(MEMBERS)}"
                )
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in ("config", "weights", "sha256")}
    except ModelFileError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise ModelFileError(f"{path} carries pickled data, which is never loaded") from None
        raise ModelFileError(f"{path} is corrupted: {err}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as err:
        raise ModelFileError(f"{path} is corrupted or truncated: {err}") from None


def load_model(path) -> sequential.Sequential:
    """Read a model written by ``save_model``: architecture, weights and (if it was
    compiled) loss, metrics and optimizer hyper-parameters (not optimizer state)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    members = _read_members(path)
    config_bytes = members["config"].tobytes()
    weights = members["weights"]
    if members["config"].dtype != np.uint8 or members["sha256"].dtype != np.uint8:
        raise ModelFileError(f"{path} is not a stoichnet model file (unexpected member types)")
    try:
        config = json.loads(config_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path} has an unreadable config ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a stoichnet model file (format is not {FORMAT!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format_version {config.get('format_version')!r}; this stoichnet "
            f"reads version {FORMAT_VERSION}"
        )
    if members["sha256"].tobytes().decode("ascii", "replace") != _digest(config_bytes, weights):
        raise ModelFileError(f"{path} is corrupted: its SHA-256 does not match its contents")
    try:
        model = sequential.Sequential.from_config(config["model"])
        if weights.dtype != model.dtype or weights.shape != (model.count_params(),):
            raise ValueError(
                f"weights are {weights.dtype} {weights.shape}, the architecture needs "
                f"{model.dtype} ({model.count_params()},)"
            )
        model.flat_params[...] = weights
        if config["compile"] is not None:
            compiled = config["compile"]
            model.compile(
                optimizers.get(compiled["optimizer"]), losses.get(compiled["loss"]), compiled["metrics"]
            )
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path} has an invalid model description: {err}") from None
    return model
