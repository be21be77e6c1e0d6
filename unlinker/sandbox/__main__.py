"""`python -m unlinker.sandbox serve|seed|reset|perf` (also `unlinker sandbox ...`)."""

import argparse
import os
import sys
from pathlib import Path

from . import config, perf
from .seed import seed
from .store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unlinker sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_db(command):
        command.add_argument(
            "--db",
            type=Path,
            help="SQLite file (default: $SANDBOX_DB, else $UNLINKER_VAR_DIR/sandbox.sqlite3)",
        )
        return command

    serve = with_db(commands.add_parser("serve", help="serve both APIs with gunicorn"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT") or 8001))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument("--quiet", action="store_true", help="no access log")

    seeding = with_db(commands.add_parser("seed", help="add a generated demo firm"))
    seeding.add_argument("--invoices", type=int, required=True)
    seeding.add_argument("--seed", type=int, default=42)
    seeding.add_argument("--name", default="Demo Law Firm")
    seeding.add_argument("--if-empty", action="store_true", help="only when there is no firm yet")

    with_db(commands.add_parser("reset", help="empty every table"))

    timing = commands.add_parser("perf", help="time seeding and serving pages (temporary files)")
    timing.add_argument("--invoices", type=int, default=100_000)
    timing.add_argument("--samples", type=int, default=50)
    return parser


def serve(args) -> None:
    """Exec gunicorn with one worker process: the rate limits, faults and idempotency keys are
    kept in that process's memory, so every request must reach the same one."""
    os.environ["SANDBOX_DB"] = str((args.db or config.db_path()).resolve())
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "unlinker.sandbox.app:make_app()",
        "--workers=1",
        f"--threads={args.threads}",
        f"--bind={args.host}:{args.port}",
        "--graceful-timeout=5",
        # Several sandboxes (the demo, test runs) would fight over gunicorn's one default path.
        "--no-control-socket",
        f"--chdir={config.ROOT}",
    ]
    if not args.quiet:
        command.append("--access-logfile=-")
    os.execv(sys.executable, command)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        serve(args)
    if args.command == "perf":
        perf.run(args.invoices, args.samples)
        return 0
    store = Store(args.db or config.db_path())
    if args.command == "reset":
        store.reset()
        print(f"Sandbox emptied: {store.path}")
        return 0
    result = seed(store, args.invoices, seed=args.seed, name=args.name, if_empty=args.if_empty)
    if result is None:
        print(f"Sandbox already has data, not seeding: {store.path}")
        return 0
    firm = result["firm"]
    print(
        f"Seeded {firm['name']} (Actionstep org {firm['orgkey']}, Xero tenant {firm['tenantId']}):"
        f" {result['invoices']} invoices, {result['payments']} payments"
        f" in {result['seconds']} s into {store.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
