"""The import map of protocols/, edge/ and central/, read from the source with `ast`: no
cycles, and the boundaries of DESIGN.md hold (protocols imports neither edge nor central;
edge and central never import each other).

Every import counts, also one inside a function or under `if TYPE_CHECKING:`: a cycle that
only a lazy import keeps from failing at start-up is still two modules that cannot be
understood, tested or moved apart.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("protocols", "edge", "central")
# What each package may import of the others (itself always).
ALLOWED = {"protocols": set(), "edge": {"protocols"}, "central": {"protocols"}}
# The stores' public face is the port (central.storeport) and the opener (central.backend):
# the shared SQL and the PostgreSQL adapters are imported only where listed.
ONLY_FROM = {
    "central.storesql": {"central.store", "central.pgstore"},
    "central.pgstore": {"central.backend", "central.pgledger", "central.pgstate"},
    "central.pgledger": {"central.backend"},
    "central.pgstate": {"central.backend"},
}
# Modules that must not reach these (directly or through others).
NEVER_REACHES = {
    "central.storeport": {"central.store", "central.pgstore", "central.storesql"},
    "central.institution": {"central.config"},  # the domain model knows no process settings
    "central.codes": {"central.institution", "central.config"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES
            for p in sorted((ROOT / package).rglob("*.py"))}


def imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The modules of `known` that `tree` imports: `from a import b` is module a.b when
    that is a module, else a; relative imports are resolved against `module`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.c` of a package's module
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def import_graph() -> dict[str, set[str]]:
    files = sources()
    known = set(files)
    return {m: set(imported(ast.parse(p.read_text(encoding="utf-8"), str(p)), m,
                            p.name == "__init__.py", known))
            for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_import_map_has_no_cycles() -> None:
    assert cycles(import_graph()) == []


def test_package_boundaries_hold() -> None:
    crossing = sorted((m, d) for m, deps in import_graph().items() for d in deps
                      if d.split(".")[0] != m.split(".")[0]
                      and d.split(".")[0] not in ALLOWED[m.split(".")[0]])
    assert crossing == []


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for d in graph.get(todo.pop(), ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def test_store_and_model_boundaries_hold() -> None:
    graph = import_graph()
    intruders = {m: sorted(i for i, deps in graph.items() if m in deps and i not in allowed)
                 for m, allowed in ONLY_FROM.items()}
    assert intruders == {m: [] for m in ONLY_FROM}
    reached = {m: sorted(reachable(graph, m) & banned) for m, banned in NEVER_REACHES.items()}
    assert reached == {m: [] for m in NEVER_REACHES}


def test_the_checker_sees_cycles_and_every_kind_of_import() -> None:
    """The two tests above would pass on an empty graph: show that the reader finds lazy,
    TYPE_CHECKING, relative and `from package import module` imports, and that a cycle
    through them is reported."""
    known = {"central", "central.a", "central.b", "central.c", "edge.x"}
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from central.b import Thing\n"
                     "def f():\n    from . import c\n    import edge.x.y\n")
    assert set(imported(tree, "central.a", False, known)) == {"central.b", "central.c",
                                                              "edge.x"}
    graph = {"central.a": {"central.b"}, "central.b": {"central.c"},
             "central.c": {"central.a"}, "edge.x": {"central.a"}}
    assert cycles(graph) == [["central.a", "central.b", "central.c"]]
    assert reachable(graph, "edge.x") == {"central.a", "central.b", "central.c"}
    assert len(import_graph()) > 80  # the real tree was read
