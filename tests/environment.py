"""The environment a test run gives the settings and every process it starts, set before
Django loads (pyproject.toml: `-p tests.environment`).

- A var/ of the run's own, made by the code `unlinker init` runs (generated secret key and token
  key, the broker's folders), removed at the end: a clean clone, CI and a developer's machine
  test alike, and the developer's own var/ (the demo's data) is never touched. Worker processes
  the tests start inherit it, and with it the keys to the tokens the tests store.
- UNLINKER_SANDBOX=1: the suite runs against the sandbox on purpose, with DEBUG off (the
  production profile).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from unlinker import vardir


@pytest.hookimpl(tryfirst=True)  # before pytest-django loads the settings
def pytest_load_initial_conftests(early_config, parser, args):
    var = Path(tempfile.mkdtemp(prefix="unlinker-test-var-"))
    # at exit, however the run ends (a run that fails to start never unconfigures)
    atexit.register(shutil.rmtree, var, ignore_errors=True)
    vardir.init(var)
    os.environ["UNLINKER_VAR_DIR"] = str(var)
    os.environ["UNLINKER_SANDBOX"] = "1"
