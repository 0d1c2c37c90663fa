"""Registered data files: where a copy is found, how it is downloaded, how it is checked.

A ``DataFile`` is named by its path relative to the data folder, its public source URLs
and its SHA-256. ``fetch_file`` looks for it, in this order, in

1. ``data_dir`` (default: the folder named by ``$STOICHNET_DATA``), same relative layout;
2. the user cache ``cache_dir`` (default: ``$STOICHNET_CACHE``, else
   ``$XDG_CACHE_HOME/stoichnet``, else ``~/.cache/stoichnet``);
3. its source URLs, downloaded into the cache under a temporary name that is renamed only
   once the SHA-256 matches.

Every file found is checked against its SHA-256; a mismatch is an error, never a fallback.
The registries of datasets (``stoichnet.chem.datasets`` for compositions,
``stoichnet.images`` for images) are built on this module.
"""

import hashlib
import http.client
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from stoichnet.util.files import atomic_file

__all__ = [
    "CHUNK_BYTES",
    "ChecksumError",
    "DataFile",
    "DatasetNotAvailableError",
    "default_cache_dir",
    "fetch_file",
]

CHUNK_BYTES = 1 << 20
"""Bytes read at a time when hashing or downloading a file."""


class ChecksumError(ValueError):
    """A data file's SHA-256 differs from the registry's."""


class DatasetNotAvailableError(FileNotFoundError):
    """A data file is neither in the data folder nor in the cache, and cannot be downloaded."""


@dataclass(frozen=True)
class DataFile:
    """One registered file of a dataset.

    path: POSIX path relative to the data folder (and to the cache).
    sha256: hex digest of the file's bytes.
    urls: public sources, tried in order.
    rows: data rows (CSV, header excluded) or records (IDX).
    """

    path: str
    sha256: str
    urls: tuple[str, ...]
    rows: int


def default_cache_dir() -> Path:
    """``$STOICHNET_CACHE``, else ``$XDG_CACHE_HOME/stoichnet``, else ``~/.cache/stoichnet``."""
    if os.environ.get("STOICHNET_CACHE"):
        return Path(os.environ["STOICHNET_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "stoichnet"
    return Path.home() / ".cache" / "stoichnet"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, file: DataFile) -> Path:
    actual = _sha256(path)
    if actual != file.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 mismatch for {file.path}: expected {file.sha256}, got {actual}. "
            "The file is corrupt or a different version; replace it with the published file "
            f"({file.urls[0]})"
        )
    return path


def _download(url: str, dest: Path, file: DataFile, progress: bool) -> None:
    """Stream ``url`` into a temporary file next to ``dest`` (``atomic_file``), with a
    progress bar on stderr; it becomes ``dest`` only if its SHA-256 matches."""
    digest = hashlib.sha256()
    # overwrite: a copy another process finished meanwhile has the same verified bytes
    with atomic_file(dest, overwrite=True) as tmp:
        with tmp.open("wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = response.headers.get("Content-Length")
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      desc=file.path, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != file.sha256:  # raising here leaves dest untouched
            raise ChecksumError(
                f"download of {file.path} from {url}: SHA-256 mismatch: expected {file.sha256}, "
                f"got {digest.hexdigest()}; the file was not saved"
            )


def fetch_file(
    file: DataFile,
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Local path of a verified copy of ``file`` (see the module docstring for the order).

    data_dir: default ``$STOICHNET_DATA``; cache_dir: default ``default_cache_dir()``.
    Raises ``ChecksumError`` when a copy found or downloaded has the wrong SHA-256 and
    ``DatasetNotAvailableError`` when no copy exists and none can be downloaded.
    """
    if data_dir is None and os.environ.get("STOICHNET_DATA"):
        data_dir = os.environ["STOICHNET_DATA"]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    places = ([Path(data_dir) / file.path] if data_dir is not None else []) + [cache / file.path]
    for place in places:
        if place.is_file():
            return _verified(place, file)
    failures = []
    if download:
        for url in file.urls:
            try:
                _download(url, places[-1], file, progress)
                return places[-1]
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{url}: {exc}")
    tried = "; ".join(failures) if failures else "download disabled"
    raise DatasetNotAvailableError(
        f"{file.path} is not available: looked for {', '.join(map(str, places))} ({tried}). "
        f"Download it from {file.urls[0]} and put it at one of those paths "
        "(or set STOICHNET_DATA to a folder holding it under the same relative path)"
    )
