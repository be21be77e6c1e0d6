"""Where the sandbox keeps its state and the settings it reads from the environment."""

import os
from pathlib import Path

from unlinker import vardir

ROOT = vardir.BASE_DIR


def db_path() -> Path:
    """SANDBOX_DB, else sandbox.sqlite3 in the project's var/ directory (UNLINKER_VAR_DIR moves
    it, as it moves the rest of var/)."""
    if os.environ.get("SANDBOX_DB"):
        return Path(os.environ["SANDBOX_DB"])
    return vardir.var_dir() / "sandbox.sqlite3"


def token_ttls() -> dict[str, int]:
    """Access-token lifetimes in seconds: the real APIs' figures unless shortened for tests."""
    return {
        "actionstep": int(os.environ.get("SANDBOX_ACTIONSTEP_TOKEN_TTL") or 3600),
        "xero": int(os.environ.get("SANDBOX_XERO_TOKEN_TTL") or 1800),
    }
