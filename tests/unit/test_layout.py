"""The shape of the code: one-way layers, no import circle, short modules.

Dependencies point one way: cli -> runtime -> pipeline -> config -> operators -> state.
The accelerators (riverflink.accel) are used by the runtime and nothing below it; cluster
and results sit beside the runtime. Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The repository's folders and the names they are imported by (pyproject's package-dir).
PACKAGES = {"jobs": "riverflink", "operators": "riverflink.operators", "state": "riverflink.state"}
MAX_LINES = 500


def _modules() -> dict:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = [package, *path.relative_to(REPO / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set:
    """The project modules ``name`` imports (a package's ``__init__`` included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        out.update(t for t in targets if t in MODULES and t != name)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}

OPS, S = "riverflink.operators", "riverflink.state"
#: What each layer may import, besides itself. Prefix match on module names.
ALLOWED = {
    "riverflink": ("riverflink.library",),  # the public names, imported on first use
    S: (S,),
    OPS: (OPS, S),
    "riverflink.config": ("riverflink.config", OPS, S),
    "riverflink.pipeline": ("riverflink.pipeline", "riverflink.config", OPS, S),
    "riverflink.library": (
        "riverflink.library",
        "riverflink.pipeline",
        "riverflink.config",
        OPS,
        S,
    ),
    "riverflink.accel": (
        "riverflink.accel",
        "riverflink.config",
        "riverflink.pipeline.router_jar",
        "riverflink.results",
        OPS,
        S,
    ),
    "riverflink.results": ("riverflink.results", "riverflink.config", OPS, S),
    "riverflink.runtime": (
        "riverflink.runtime",
        "riverflink.accel",
        "riverflink.pipeline",
        "riverflink.config",
        "riverflink.results",
        OPS,
        S,
    ),
    "riverflink.cluster": (
        "riverflink.cluster",
        "riverflink.accel",
        "riverflink.pipeline.router_jar",
        "riverflink.config",
        OPS,
        S,
    ),
    "riverflink.cli": ("riverflink",),
    "riverflink.__main__": ("riverflink.cli",),
    "riverflink.online_learning": ("riverflink.cli",),
}


def _layer(name: str) -> str:
    return max(
        (layer for layer in ALLOWED if name == layer or name.startswith(layer + ".")), key=len
    )


def _within(target: str, prefixes) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "riverflink"))
def test_imports_point_one_way(name):
    allowed = ALLOWED[_layer(name)]
    wrong = sorted(t for t in GRAPH[name] if t != "riverflink" and not _within(t, allowed))
    assert not wrong, f"{name} imports {wrong}; its layer may import {allowed}"


def test_the_command_line_is_imported_by_nothing():
    importers = sorted(
        name
        for name, targets in GRAPH.items()
        if any(_within(t, ("riverflink.cli",)) for t in targets)
        and not _within(name, ("riverflink.cli",))
        and name not in ("riverflink.online_learning", "riverflink.__main__")
    )
    assert importers == []


def test_no_import_circle():
    """Depth-first search for a back edge over every import of every module."""
    state: dict = {}
    path: list = []

    def visit(name):
        state[name] = "open"
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                circle = path[path.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_short(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines (at most {MAX_LINES})"


def test_the_pure_logic_imports_no_flink():
    """The per-key logic and the state envelope are tested without a JVM."""
    for name in (
        "riverflink.operators.learner",
        "riverflink.operators.records",
        "riverflink.operators.results",
        "riverflink.operators.live_models",
        "riverflink.state.envelope",
        "riverflink.state.spec",
    ):
        source = MODULES[name].read_text(encoding="utf-8")
        assert "pyflink" not in source.replace("PyFlink", ""), name


def test_every_package_is_in_the_wheel():
    """pyproject lists the packages one by one (package-dir mounts the folders)."""
    import tomllib

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    python = {p for p in listed["packages"] if ".java." not in p and p != "riverflink.flink_conf"}
    assert packages == python
