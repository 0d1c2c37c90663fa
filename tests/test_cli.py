import subprocess
import sys

import stoichnet
from stoichnet.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert stoichnet.__version__ in capsys.readouterr().out


def test_help_lists_usage(capsys):
    assert main(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_console_script_installed():
    out = subprocess.run(
        [sys.executable, "-m", "stoichnet.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().endswith(stoichnet.__version__)


def test_unknown_command_fails(capsys):
    assert main(["no-such-command"]) != 0
