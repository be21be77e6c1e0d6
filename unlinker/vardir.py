"""var/: what one machine keeps for itself when nothing else is configured.

`unlinker init` makes it (`make run` runs it first): the generated secret key and token key, the
demo's SQLite database beside them, kombu's folders when there is no Redis, the collected static
files. Importing the settings only reads it, so that no process writes a file merely by
starting; a deployment (docker-compose.yml) sets SECRET_KEY and UNLINKER_TOKEN_KEY instead and
keeps var/ for the beat schedule and the sandbox's data.

No Django here: `unlinker init` runs before the settings can load.
"""

import base64
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)
TOKEN_KEY_FILE = "token_key"  # noqa: S105 (a file name)
SQLITE_FILE = "unlinker.sqlite3"
STATIC_FOLDER = "staticfiles"
# kombu's filesystem transport: messages in queue/, acknowledged ones in processed/, and its
# exchange tables in control/ (by default it writes those into the working directory).
BROKER_FOLDERS = ("queue", "processed", "control")


def var_dir() -> Path:
    """UNLINKER_VAR_DIR, else var/ in the project's folder."""
    return Path(os.environ.get("UNLINKER_VAR_DIR") or BASE_DIR / "var")


def broker_folder(var: Path, name: str) -> Path:
    return var / "broker" / name


def read_secret(var: Path, filename: str) -> str:
    """A secret `unlinker init` generated, or "" when there is none."""
    path = var / filename
    return path.read_text().strip() if path.is_file() else ""


def _secret_key() -> str:
    return secrets.token_urlsafe(50)


def _token_key() -> str:
    # A Fernet key, without importing cryptography: 32 random bytes, url-safe base64.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def init(var: Path | None = None) -> list[Path]:
    """Make var/ and whatever of it is missing; never replaces a secret that exists (the tokens
    stored in the database stay readable). Returns what it made."""
    var = var or var_dir()
    made = []
    for folder in (var, var / STATIC_FOLDER, *(broker_folder(var, n) for n in BROKER_FOLDERS)):
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            made.append(folder)
    for filename, make in ((SECRET_KEY_FILE, _secret_key), (TOKEN_KEY_FILE, _token_key)):
        path = var / filename
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        made.append(path)
    return made
