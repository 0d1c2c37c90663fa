"""Writing files so that a crash never leaves a broken one and nothing is overwritten
unasked.

Every output goes to a temporary file in the destination's folder, is flushed and
fsynced, then renamed over the destination (``os.replace`` is atomic on POSIX and
Windows) and the folder is fsynced: after a crash at any moment the destination holds
either the old or the new content. The finished file gets the mode an ordinary
``open(path, "w")`` would give it (0666 less the umask), not ``mkstemp``'s 0600, so a
colleague can read a model file like any other output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial"


def check_output_file(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``; return it as a Path.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {str(path)!r} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"output {str(path)!r} exists; pass --overwrite (overwrite=True in Python) to "
            "replace it"
        )
    return path


def check_output_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a non-empty folder ``path`` unless ``overwrite``; return it as a Path.

    Raises:
        FileExistsError: ``path`` is a non-empty folder and ``overwrite`` is false.
        NotADirectoryError: ``path`` exists and is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"output folder {str(path)!r} is a file")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {str(path)!r} is not empty; pass --overwrite to write into it"
        )
    return path


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _publish(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, give it the umask's mode, rename it to ``path``, fsync the folder."""
    _fsync(tmp)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
    fsync_folder(path.parent)


@contextmanager
def atomic_file(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers that look at the
    suffix behave); on normal exit it is made durable and renamed to ``path``, on an
    exception it is removed and ``path`` is untouched.

    Example::

        with atomic_file("predictions.csv", overwrite=False) as tmp:
            frame.to_csv(tmp, index=False)

    Raises ``FileExistsError`` for an existing ``path`` unless ``overwrite``.
    """
    path = check_output_file(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}{PARTIAL}-", suffix=path.suffix,
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder ``<path>.partial``; on normal exit each file written in it
    is made durable and renamed into ``path`` (created if needed), then the temporary
    folder is removed.

    Files already in ``path`` that this run does not write are left alone. On an exception
    the temporary folder is kept, so what was written survives under the temporary name,
    and nothing in ``path`` changes.

    Raises:
        FileExistsError: ``path`` is a non-empty folder and ``overwrite`` is false.
    """
    path = check_output_dir(path, overwrite)
    tmp = path.with_name(path.name + PARTIAL)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    path.mkdir(parents=True, exist_ok=True)
    for item in sorted(tmp.rglob("*")):
        if item.is_file():
            target = path / item.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            _publish(item, target)
    shutil.rmtree(tmp)
