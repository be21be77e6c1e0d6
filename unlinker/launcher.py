"""`make run`: prepare the demo and start every process with honcho.

Redis is used when it answers; otherwise the Celery broker falls back to kombu's filesystem
transport under var/, so the demo still runs a real worker and beat with no server installed.
The processes are the Procfile's, each defined once in unlinker/cli.py.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from unlinker import vardir
from unlinker.sandbox.config import db_path
from unlinker.sandbox.control import SandboxServer

ROOT = Path(__file__).resolve().parent.parent


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def choose_broker(env: dict) -> str:
    if env.get("CELERY_BROKER_URL"):
        return f"Celery broker: {env['CELERY_BROKER_URL']} (from CELERY_BROKER_URL)"
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if redis_answers(redis_url):
        env["REDIS_URL"] = redis_url
        return f"Celery broker: Redis at {redis_url}"
    env["CELERY_BROKER_URL"] = "filesystem://"
    env.pop("REDIS_URL", None)
    return (
        f"Celery broker: no Redis answers at {redis_url}; using kombu's filesystem transport "
        "under var/broker (demo only: start Redis or set REDIS_URL for the real thing)."
    )


def manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, env=env)


def main() -> None:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("PORT", "8000")
    env.setdefault("SANDBOX_PORT", "8001")
    env.setdefault("SANDBOX_URL", f"http://127.0.0.1:{env['SANDBOX_PORT']}")
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{env['PORT']}")  # for emailed links
    env["PYTHONUNBUFFERED"] = "1"
    # honcho starts each Procfile line in a shell: the virtualenv's commands come first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    broker_note = choose_broker(env)
    database_note = (
        "Database: DATABASE_URL"
        if env.get("DATABASE_URL")
        else "Database: SQLite at var/unlinker.sqlite3"
    )

    # var/ first: the settings only read it (generated secrets, SQLite, the broker's folders).
    made = vardir.init()
    manage("migrate", "--noinput", env=env)
    manage("create_demo_user", env=env)
    subprocess.run(
        [sys.executable, "-m", "unlinker.sandbox", "seed", "--if-empty", "--invoices", "500"],
        check=True,
        env=env,
        cwd=ROOT,
    )
    # The demo firm is paired once, through the sandbox on the port it keeps afterwards (the
    # stored Actionstep endpoint names it), before honcho starts everything for good.
    with SandboxServer(db_path(), port=int(env["SANDBOX_PORT"])):
        manage("connect_sandbox", env=env)

    url = f"http://127.0.0.1:{env['PORT']}/"
    banner = [
        "",
        "=" * 72,
        f"  Unlinker is starting: open {url}",
        f"  Sandbox (stands in for Actionstep and Xero): {env['SANDBOX_URL']}",
        "  Demo logins: demo / demo (admin), operator / operator, viewer / viewer",
        "  Email (set-password links) is written to var/sent-mail/, not sent",
        f"  {broker_note}",
        f"  {database_note}",
        f"  Local state: {vardir.var_dir()}"
        + (
            " (made now, secrets generated)"
            if vardir.TOKEN_KEY_FILE in {p.name for p in made}
            else ""
        ),
        "  Ctrl-C stops every process started here.",
        "=" * 72,
        "",
    ]
    print("\n".join(banner), flush=True)
    honcho = shutil.which("honcho", path=env["PATH"]) or "honcho"
    os.chdir(ROOT)
    os.execvpe(honcho, [honcho, "start", "-f", "Procfile"], env)


if __name__ == "__main__":
    main()
