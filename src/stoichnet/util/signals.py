"""The one Ctrl-C helper: the first press asks for a graceful stop, the second aborts."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def graceful_sigint(request_stop: Callable[[], None]) -> Iterator[bool]:
    """While active, the first Ctrl-C calls ``request_stop()`` and the next raises
    ``KeyboardInterrupt`` at once.

    Installed only in the main thread and only while SIGINT has Python's default
    handler: an outer ``graceful_sigint`` (e.g. the command line's, around ``fit``'s)
    or a caller's own handler is left in charge. Yields whether this one was installed.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield False
        return
    pressed = False

    def handler(signum, frame):
        nonlocal pressed
        if pressed:
            raise KeyboardInterrupt
        pressed = True
        request_stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, previous)
