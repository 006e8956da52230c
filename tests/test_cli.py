"""The console command: help, usage errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

from cv.cli import main


def test_help_lists_the_command_groups(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "data" in out and "serve" in out and "risk" in out


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_console_script_runs_as_module():
    proc = subprocess.run(
        [sys.executable, "-m", "cv.cli", "data", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "synth" in proc.stdout and "convert" in proc.stdout and "check" in proc.stdout
