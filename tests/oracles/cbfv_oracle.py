"""Build the pinned CBFV environment and its reference features (standard library only).

CBFV 1.1.0 cannot run beside stoichnet's pandas 3, so it gets its own virtual
environment, pinned by cbfv-requirements.txt, under tests/_oracle_cache/ (gitignored).
make_cbfv_reference.py runs inside it and writes the reference features there. Both are
rebuilt when missing or stale: each is keyed by the SHA-256 of the files it depends on.

By hand (from the repository root, with the dev environment active):

    python tests/oracles/cbfv_oracle.py --data "$STOICHNET_DATA"
"""

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ORACLE_DIR = Path(__file__).resolve().parent
CACHE_DIR = ORACLE_DIR.parent / "_oracle_cache"
REQUIREMENTS = ORACLE_DIR / "cbfv-requirements.txt"
REFERENCE_SCRIPT = ORACLE_DIR / "make_cbfv_reference.py"
VENV_DIR = CACHE_DIR / "venv-cbfv"
BUILD_BY_HAND = 'python tests/oracles/cbfv_oracle.py --data "$STOICHNET_DATA"'


class CBFVOracleError(RuntimeError):
    """The pinned CBFV environment or its reference features could not be built."""


def _digest(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _run(command: list, what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise CBFVOracleError(
            f"{what} failed (exit {done.returncode}): {' '.join(map(str, command))}\n{tail}\n"
            f"Fix the cause, then rebuild by hand: {BUILD_BY_HAND}"
        )


@contextlib.contextmanager
def _exclusive():
    """Serialise builds between processes (several test runs may share this tree)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cbfv_python() -> Path:
    """The pinned environment's Python, building the environment if missing or stale."""
    with _exclusive():
        return _cbfv_python()


def _cbfv_python() -> Path:
    bin_dir = VENV_DIR / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    stamp = VENV_DIR / "stoichnet-requirements.sha256"
    key = _digest(REQUIREMENTS)
    if stamp.is_file() and stamp.read_text() == key and python.exists():
        return python
    shutil.rmtree(VENV_DIR, ignore_errors=True)
    _run([sys.executable, "-m", "venv", VENV_DIR], "creating the CBFV environment")
    _run(
        [python, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS],
        f"installing {REQUIREMENTS.name} into {VENV_DIR}",
    )
    stamp.write_text(key)
    return python


def reference_dir(data_dir: Path) -> Path:
    """The folder of CBFV reference features for the shared data, built if missing or stale."""
    with _exclusive():
        return _reference_dir(Path(data_dir))


def _reference_dir(data_dir: Path) -> Path:
    python = _cbfv_python()
    out = CACHE_DIR / f"cbfv-reference-{_digest(REFERENCE_SCRIPT, REQUIREMENTS)}"
    if (out / "complete").is_file():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _run(
            [python, "-W", "ignore::UserWarning", REFERENCE_SCRIPT, "sample",
             "--data", data_dir, "--out", partial],
            "writing the CBFV reference features",
        )  # fmt: skip
    except CBFVOracleError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / "complete").write_text("")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    for stale in CACHE_DIR.glob("cbfv-reference-*"):
        if stale != out:
            shutil.rmtree(stale, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("STOICHNET_DATA"))
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set STOICHNET_DATA to the shared data folder")
    print(reference_dir(args.data))


if __name__ == "__main__":
    main()
