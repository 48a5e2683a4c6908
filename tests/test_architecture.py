"""The shape of the package, kept by a test: no import circles, nothing importing upward,
one subprocess wrapper, and a runtime that stands alone.

Imports are read from the source (every ``import``, at module level or inside a
function; not those under ``if TYPE_CHECKING:``, which never run). The layers, top down,
are those of README.md's architecture section.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "llmsetup"

# A part of the package (its first name under llmsetup) and its floor: a module may import
# its own part, or a part on a lower floor, never one on its floor or above.
FLOORS = {
    "__main__": 10,
    "cli": 9,
    "catalog_view": 8,
    "install": 7,
    "host": 6, "webui": 6, "doctor": 6, "housekeeping": 6,
    "download": 5, "targets": 5, "serving": 5,
    "envs": 4, "hardware": 4,
    "recipes": 3, "settings": 3,
    "proc": 2, "config_schema": 2,
    "errors": 1, "fileio": 1, "yamlfile": 1, "values": 1,
    "secret": 0, "i18n": 0, "interrupts": 0,
    "": 0,  # the package itself (its version)
}
# What the runtime modules may import: they run inside a model's environment.
RUNTIME_FORBIDDEN = {"llmsetup", "typer", "rich", "pydantic", "click", "yaml", "requests"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs: all but the bodies of ``if TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def _imported(tree: ast.AST) -> set[str]:
    """Top-level names of every module imported (``os``, ``llmsetup``, ...)."""
    names = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _edges(module: str, tree: ast.AST) -> set[str]:
    """The llmsetup modules ``module`` imports (a name imported from a package is the
    submodule of that name when there is one, else the package itself)."""
    out = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llmsetup"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
    out.discard(module)
    return {m for m in out if m in MODULES}


def _graph() -> dict[str, set[str]]:
    return {m: _edges(m, ast.parse(p.read_text(encoding="utf-8")))
            for m, p in MODULES.items() if not m.startswith("llmsetup.runtime")}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_part_has_a_floor():
    parts = {_part(m) for m in MODULES if not m.startswith("llmsetup.runtime")}
    assert parts - FLOORS.keys() == set(), "give the new part a floor in FLOORS"


def test_no_import_circles():
    assert _circles(_graph()) == []


def test_the_circle_check_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_imports_upward():
    upward = []
    for module, targets in _graph().items():
        mine = _part(module)
        for target in targets:
            theirs = _part(target)
            if theirs != mine and FLOORS[theirs] >= FLOORS[mine]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_only_proc_starts_processes():
    users = sorted(m for m, p in MODULES.items()
                   if not m.startswith("llmsetup.runtime") and m != "llmsetup.proc"
                   and "subprocess" in _imported(ast.parse(p.read_text(encoding="utf-8"))))
    assert users == []


def test_the_runtime_stands_alone():
    """Runtime modules run in a model's environment: stdlib and the ML stack only."""
    bad = {}
    for module, path in MODULES.items():
        if module.startswith("llmsetup.runtime"):
            found = _imported(ast.parse(path.read_text(encoding="utf-8"))) & RUNTIME_FORBIDDEN
            if found:
                bad[module] = sorted(found)
    assert bad == {}
