"""Bars on a terminal, one line per finished model in a log."""

import io

from stoichnet.evaluate import progress


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_a_log_gets_lines_and_no_bar(monkeypatch):
    stream = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", stream)
    assert not progress.interactive()
    for _ in progress.progress_bar(range(3), enabled=True, desc="compare"):
        progress.progress_line("rf: fitted in 1 s", enabled=True)
    progress.progress_line("not shown", enabled=False)
    assert stream.getvalue() == "rf: fitted in 1 s\n" * 3


def test_a_terminal_gets_the_bar_and_no_lines(monkeypatch):
    stream = _Stream(tty=True)
    monkeypatch.setattr("sys.stderr", stream)
    assert progress.interactive()
    for _ in progress.progress_bar(range(3), enabled=True, desc="compare"):
        progress.progress_line("rf: fitted in 1 s", enabled=True)
    assert "compare" in stream.getvalue() and "fitted" not in stream.getvalue()
    stream.seek(0)
    stream.truncate()
    for _ in progress.progress_bar(range(3), enabled=False, desc="compare"):
        pass
    assert stream.getvalue() == ""
