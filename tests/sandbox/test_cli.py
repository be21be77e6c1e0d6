import os
import subprocess
import sys

from unlinker import cli
from unlinker.sandbox import config
from unlinker.sandbox.config import ROOT
from unlinker.sandbox.store import Store


def test_the_launcher_s_seed_command_is_quick_and_idempotent(tmp_path):
    env = {**os.environ, "UNLINKER_VAR_DIR": str(tmp_path)}
    env.pop("SANDBOX_DB", None)
    command = [sys.executable, "-m", "unlinker.sandbox", "seed", "--if-empty", "--invoices", "500"]
    first = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "Seeded Demo Law Firm" in first.stdout and "500 invoices" in first.stdout
    assert (tmp_path / "sandbox.sqlite3").exists()
    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "already has data" in again.stdout


def test_the_database_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SANDBOX_DB", raising=False)
    monkeypatch.setenv("UNLINKER_VAR_DIR", str(tmp_path))
    assert config.db_path() == tmp_path / "sandbox.sqlite3"
    monkeypatch.setenv("SANDBOX_DB", str(tmp_path / "elsewhere.sqlite3"))
    assert config.db_path() == tmp_path / "elsewhere.sqlite3"


def test_the_console_script_delegates_to_the_sandbox(tmp_path, capsys):
    db = tmp_path / "cli.sqlite3"
    assert cli.main(["sandbox", "seed", "--invoices", "5", "--db", str(db)]) == 0
    assert "5 invoices" in capsys.readouterr().out
    assert cli.main(["sandbox", "reset", "--db", str(db)]) == 0
    assert Store(db).is_empty()
    assert cli.main([]) == 2


def test_the_procfile_serves_the_sandbox():
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert "sandbox: unlinker sandbox serve" in lines
