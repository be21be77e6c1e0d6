"""The `unlinker` command: the one definition of each process, which the Procfile (`make run`),
docker-compose.yml and the Dockerfile all start, and the set-up they need.

    unlinker init                    make var/ where it is missing (generated secrets, folders)
    unlinker web [--bind HOST:PORT]  the web server (gunicorn)
    unlinker worker                  the Celery worker
    unlinker beat                    Celery beat (the schedule)
    unlinker sandbox {serve,seed,reset,perf} ...   the stand-in for Actionstep and Xero

Options after web, worker and beat go to gunicorn or Celery and win over the ones defined here
(e.g. `unlinker worker --concurrency 8`). A process replaces this command (exec): the signals of
honcho, docker or a terminal reach gunicorn or Celery themselves.
"""

import os
import sys

# gunicorn: 3 processes of 4 threads each (a web request mostly waits for the database).
WEB = ["-m", "gunicorn", "unlinker.wsgi", "--workers", "3", "--threads", "4"]
WEB += ["--access-logfile", "-", "--no-control-socket"]  # several demos on one machine
# Celery: 4 prefork processes (make bench measures the throughput of this definition).
WORKER = ["-m", "celery", "-A", "unlinker", "worker", "--loglevel", "INFO", "--concurrency", "4"]
# The schedule file's place comes from the settings (CELERY_BEAT_SCHEDULE_FILENAME, in var/).
BEAT = ["-m", "celery", "-A", "unlinker", "beat", "--loglevel", "INFO"]
PROCESSES = {"web": WEB, "worker": WORKER, "beat": BEAT}

USAGE = __doc__.split("\n\n")[1]


def process_command(name: str, options: list[str]) -> list[str]:
    """The command line of a process: its definition, then the caller's options."""
    if (
        name == "web"
        and "--bind" not in options
        and not any(o.startswith(("--bind=", "-b")) for o in options)
    ):
        # make run serves on PORT; docker-compose.yml binds 0.0.0.0:8000 in the container
        options = ["--bind", f"127.0.0.1:{os.environ.get('PORT') or 8000}", *options]
    return [sys.executable, *PROCESSES[name], *options]


def init() -> int:
    from unlinker import vardir

    made = vardir.init()
    for path in made:
        print(f"made {path}")
    print(f"{vardir.var_dir()} is ready" + ("" if made else " (nothing was missing)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command, options = (argv[0], argv[1:]) if argv else ("", [])
    if command == "sandbox":
        from unlinker.sandbox.__main__ import main as sandbox_main

        return sandbox_main(options)
    if command == "init" and not options:
        return init()
    if command in PROCESSES:
        args = process_command(command, options)
        os.execv(args[0], args)
    print(f"usage:\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
