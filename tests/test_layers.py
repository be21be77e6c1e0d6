"""The layers' import rules, read from the source: `unlinker.integrations` is a pure client
layer (HTTP, records, errors, throttles) that knows nothing of the apps built on it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "unlinker"


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a file of `package` imports, at the top or inside a function, relative
    imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def outside_the_clients(source: str) -> set[str]:
    return {
        name
        for name in imported_modules(source, "unlinker.integrations")
        if name.startswith("unlinker.") and not name.startswith("unlinker.integrations")
    }


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "integrations").glob("*.py")), ids=lambda p: p.name
)
def test_the_clients_import_nothing_of_the_apps(path):
    assert outside_the_clients(path.read_text()) == set()


@pytest.mark.parametrize(
    "source",
    [
        "def f():\n    from unlinker.connections.models import Connection\n",
        "from ..connections import services\n",
        "import unlinker.mirror.models\n",
    ],
)
def test_the_rule_sees_every_form_of_import(source):
    assert outside_the_clients(source)
