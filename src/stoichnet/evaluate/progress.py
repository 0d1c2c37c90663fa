"""Progress that suits where it is shown: a bar on a terminal or in a notebook, one
plain line per finished model in a log file or a batch job's output (where a bar's
carriage returns pile up into hundreds of lines)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm
from tqdm.autonotebook import tqdm as notebook_tqdm
from tqdm.std import tqdm as std_tqdm


def interactive() -> bool:
    """True when a progress bar can redraw itself: stderr is a terminal, or this runs
    in a Jupyter kernel (where ``tqdm.auto`` draws a widget)."""
    return notebook_tqdm is not std_tqdm or sys.stderr.isatty()


def progress_bar(iterable: Iterable | None = None, *, enabled: bool, **options) -> tqdm:
    """A ``tqdm`` bar (``options`` as tqdm's), shown only when ``enabled`` and
    :func:`interactive`."""
    return tqdm(iterable, disable=not (enabled and interactive()), **options)


def progress_line(text: str, *, enabled: bool) -> None:
    """Write ``text`` as one line on stderr when ``enabled`` and not :func:`interactive`
    (there the bar says it)."""
    if enabled and not interactive():
        print(text, file=sys.stderr, flush=True)
