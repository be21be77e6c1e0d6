"""The `unlinker` console script: `unlinker sandbox serve|seed|reset|perf ...`."""

import sys

from unlinker.sandbox.__main__ import main as sandbox_main

USAGE = "usage: unlinker sandbox {serve,seed,reset,perf} ... (unlinker sandbox --help)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        return sandbox_main(argv[1:])
    print(USAGE, file=sys.stderr)
    return 2
