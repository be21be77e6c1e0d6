"""One definition of each process (unlinker/cli.py), which the Procfile, docker-compose.yml and
the Dockerfile start by name: gunicorn's and Celery's options live in one place. Docker does not
run here, so its files are checked by reading them."""

import json
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

from tests.test_configuration_table import variables_read
from unlinker import cli

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_FILES = ("Procfile", "docker-compose.yml", "Dockerfile")


def compose_commands() -> dict[str, list[str]]:
    """Each service's `command:` (a JSON-style list on one line) in docker-compose.yml."""
    commands, service = {}, None
    for line in (ROOT / "docker-compose.yml").read_text().splitlines():
        if match := re.match(r"^  ([a-z]+):\s*$", line):
            service = match[1]
        elif match := re.match(r"^    command: (\[.*\])", line):
            commands[service] = json.loads(match[1])
    return commands


def test_the_procfile_starts_each_process_by_name():
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert lines == {
        "web": "unlinker web",
        "worker": "unlinker worker",
        "beat": "unlinker beat",
        "sandbox": "unlinker sandbox serve",
    }


def test_docker_compose_starts_the_same_processes():
    commands = compose_commands()
    assert commands["web"] == ["unlinker", "web", "--bind", "0.0.0.0:8000"]
    assert commands["worker"] == ["unlinker", "worker"]
    assert commands["beat"] == ["unlinker", "beat"]
    assert commands["sandbox"][:3] == ["unlinker", "sandbox", "serve"]


def test_the_image_serves_the_web_process():
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert json.loads(cmd[1]) == ["unlinker", "web", "--bind", "0.0.0.0:8000"]


@pytest.mark.parametrize("name", DEPLOY_FILES)
def test_no_deploy_file_defines_gunicorn_or_celery_options_again(name):
    text = (ROOT / name).read_text()
    for option in ("--workers", "--threads", "--concurrency", "--loglevel", "gunicorn "):
        assert option not in text, f"{name} sets {option}: define it in unlinker/cli.py"


def test_each_process_is_its_definition_then_the_callers_options(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    web = cli.process_command("web", [])
    assert web[:3] == [sys.executable, "-m", "gunicorn"]
    assert web[-2:] == ["--bind", "127.0.0.1:8123"]  # make run's port
    assert cli.process_command("web", ["--bind", "0.0.0.0:8000"])[-2:] == ["--bind", "0.0.0.0:8000"]
    assert "127.0.0.1:8123" not in cli.process_command("web", ["-b", "0.0.0.0:1"])
    worker = cli.process_command("worker", ["--concurrency", "8"])
    # Celery and gunicorn take the last of a repeated option: the caller's wins
    assert worker.index("8") > worker.index("4")
    beat = cli.process_command("beat", [])
    assert beat[-4:] == ["unlinker", "beat", "--loglevel", "INFO"]  # its schedule in var/


def test_the_image_build_can_load_the_settings(monkeypatch, tmp_path):
    """collectstatic at build time loads the settings with the Dockerfile's stand-ins: a
    well-formed token key and no refusal of the sandbox's values."""
    line = re.search(r"&& (SECRET_KEY=.*collectstatic)", (ROOT / "Dockerfile").read_text(), re.S)
    words = shlex.split(line[1].replace("\\\n", " "))
    build_env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    assert {"SECRET_KEY", "UNLINKER_TOKEN_KEY", "UNLINKER_SANDBOX"} <= set(build_env)
    for name in variables_read():
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "var").mkdir()  # the RUN line makes /app/var first
    for name, value in {**build_env, "UNLINKER_VAR_DIR": str(tmp_path / "var")}.items():
        monkeypatch.setenv(name, value)
    loaded = runpy.run_path(str(ROOT / "unlinker" / "settings.py"))
    assert loaded["DEBUG"] is False and len(loaded["UNLINKER_TOKEN_KEYS"]) == 1
