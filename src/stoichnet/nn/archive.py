"""The archive format of model files and checkpoints: one ``.npz`` holding a JSON
config, named arrays and their SHA-256, written crash-safely and read without pickle.

Members (all plain arrays, so ``numpy.load(..., allow_pickle=False)`` reads them):

- ``config``: the UTF-8 JSON config, a uint8 array;
- ``sha256``: hex digest (uint8 array) of the config bytes followed by the
  little-endian bytes of every other member in sorted name order, so any change to
  the config or an array is detected;
- any other names: the arrays given to ``write_archive``.

This module knows nothing about models: ``nn.io`` (model files) and ``nn.checkpoint``
(training state) decide what the config and the arrays hold.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from stoichnet.util.files import atomic_file

from .errors import ModelFileError

RESERVED = ("config", "sha256")


def _digest(config_bytes: bytes, *arrays: np.ndarray) -> str:
    """SHA-256 of the config bytes followed by each array's little-endian bytes."""
    digest = hashlib.sha256(config_bytes)
    for arr in arrays:
        digest.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()


def _json_scalar(value):
    """numpy scalars (e.g. a float32 a callback logged) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored in a model file or "
                    "checkpoint; use numbers, strings, lists and dicts")


def write_archive(path, config: dict, arrays: dict[str, np.ndarray], overwrite: bool = False,
                  compress: bool = False) -> None:
    """Write an ``.npz`` of ``config`` (JSON), ``arrays`` and their SHA-256 to ``path``.

    Written through ``util.files.atomic_file`` (temporary file, fsync, rename, folder
    fsync; the umask's mode): a crash at any moment leaves either the previous file or
    the new one, never a mix. Refuses an existing ``path`` unless ``overwrite``.
    ``compress`` deflates the members (smaller, slower to write; for files that ship).
    """
    clash = set(RESERVED) & set(arrays)
    if clash:
        raise ValueError(f"array names {sorted(clash)} are reserved")
    config_bytes = json.dumps(config, sort_keys=True, default=_json_scalar).encode("utf-8")
    digest = _digest(config_bytes, *(arrays[name] for name in sorted(arrays)))
    with atomic_file(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        # a file object, so that numpy does not append ".npz" to the temporary name
        (np.savez_compressed if compress else np.savez)(
            f,
            config=np.frombuffer(config_bytes, dtype=np.uint8),
            sha256=np.frombuffer(digest.encode("ascii"), dtype=np.uint8),
            **arrays,
        )


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
