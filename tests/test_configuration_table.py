"""The README's configuration table and the environment the code reads stay one list: a
variable read anywhere in `unlinker/` without a row fails here, and so does a row for a variable
nothing reads any more."""

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Read, but not ours to document: the shell's PATH (the launcher extends it for honcho) and
# Django's own DJANGO_SETTINGS_MODULE (given a default where each process starts).
NOT_SETTINGS = {"PATH", "DJANGO_SETTINGS_MODULE"}
# The settings module's readers (unlinker/settings.py): their first argument is a variable.
READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list"}


def _is_os_environ(node) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _environment(node) -> bool:
    """os.environ, or `env`: the launcher's copy of it, handed to the processes it starts."""
    return _is_os_environ(node) or (isinstance(node, ast.Name) and node.id == "env")


def read_in(source: str) -> set[str]:
    """The environment variables a module reads: through the settings' env_* readers,
    os.environ.get / [] / setdefault, os.getenv, and the launcher's `env` (a copy of it)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        first = None
        if isinstance(node, ast.Call) and node.args and _reads(node.func):
            first = node.args[0]
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _environment(node.value)
        ):
            first = node.slice
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def _reads(func) -> bool:
    if isinstance(func, ast.Name):
        return func.id in READERS
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "getenv":
        return isinstance(func.value, ast.Name) and func.value.id == "os"
    return func.attr in {"get", "setdefault"} and _environment(func.value)


@functools.cache
def variables_read() -> frozenset[str]:
    found = set()
    for path in (ROOT / "unlinker").rglob("*.py"):
        found |= read_in(path.read_text())
    return frozenset(found - NOT_SETTINGS)


def table_variables(readme: str) -> set[str]:
    """The variables named in the first column of the table under "## Configuration"."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_variable_read_is_in_the_readme_table():
    documented = table_variables((ROOT / "README.md").read_text())
    assert sorted(variables_read() - documented) == []


def test_every_variable_in_the_readme_table_is_read():
    documented = table_variables((ROOT / "README.md").read_text())
    assert sorted(documented - variables_read()) == []


def test_the_scan_sees_every_way_of_reading():
    source = """
import os
A = env_int("A_INT", 1)
B = os.environ.get("B_GET")
C = os.environ["C_ITEM"]
D = os.getenv("D_GETENV")
env = dict(os.environ)
env.setdefault("E_DEFAULT", "1")
F = env["F_COPY"]
os.environ["NOT_A_READ"] = "1"
"""
    assert read_in(source) == {"A_INT", "B_GET", "C_ITEM", "D_GETENV", "E_DEFAULT", "F_COPY"}
    table = (
        "\n## Configuration\n\n| `XA`, `Y_Z` | d | m |\n| `WB` | `LOOKS_LIKE_ONE` | m |\n"
        "## Next\n| `QQ` | | |\n"
    )
    assert table_variables(table) == {"XA", "Y_Z", "WB"}
    self_environ = "class R:\n    def f(self):\n        return self.environ.get('HTTP_HOST')\n"
    assert read_in(self_environ) == set()  # a WSGI environ is not the process's
