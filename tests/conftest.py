import os
import signal
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder named by STOICHNET_DATA. Tests that need it fail
    (they never skip) when it is missing, saying how to set it."""
    value = os.environ.get("STOICHNET_DATA")
    if not value or not Path(value).is_dir():
        pytest.fail(
            f"STOICHNET_DATA={value!r} is not a folder: point it at the shared data "
            "(export STOICHNET_DATA=../shared/data)"
        )
    return Path(value)


@pytest.fixture(autouse=True)
def default_sigint_handler():
    """Each test starts with Python's own SIGINT handler, as in a foreground process: a test
    run started in the background (``cmd &`` in a script, ``nohup``) inherits SIGINT as
    ignored, and the Ctrl-C tests would then test that disposition instead."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
