"""What the repository itself holds: no file that a process writes at run time."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# var/ is the machine's own state (unlinker/vardir.py); control/ is where kombu's filesystem
# transport wrote its exchange tables before the settings sent them to var/broker/control.
RUN_TIME_FOLDERS = ("var", "control")


def committed(*paths: str) -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout and the git program")
    listed = subprocess.run(
        ["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return listed.stdout.split()


def test_no_file_under_var_or_control_is_committed():
    assert committed(*RUN_TIME_FOLDERS) == []


def test_the_check_sees_a_committed_file():
    assert "Procfile" in committed("Procfile")
