"""The layers of docs/architecture.md, checked on the source (ast, nothing imported):

    ingest  <  correlate  <  escalation  <  mcp_server

1. imports point down only: ingest uses none of the others; correlate uses ingest (its dataset
   handle and layout: any ingest module is let through, `correlate_uses_of_ingest()` says which);
   escalation uses correlate and ingest; mcp_server may use all three; nothing imports mcp_server.
   Imports inside functions count too: a lazy import is still a dependency.
2. no import cycle between modules: among module-level imports (those that run at import time)
   none at all; counting the imports inside functions too, none but the known ones.
3. no private name (a leading underscore, not a dunder) crosses a module boundary, whether
   imported (`from a.b import _x`) or reached as an attribute (`a.b._x`). A package's private
   module (`ingest/_otlpscan`, `mcp_server/commands/_correlate.py`) may be imported by the
   modules of that package.

Known violations in files other work is changing are listed below, each marked; any other,
new one fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("ingest", "correlate", "escalation", "mcp_server")  # lowest first

# Known violations. The test fails on any violation not listed here, and on an entry whose
# violation is gone (so a fixed one cannot hide a new one).
KNOWN_UPWARD: set[tuple[str, str]] = set()  # (importer, imported module)
KNOWN_CYCLES: set[frozenset[str]] = set()  # module-level cycles, as the set of their modules
KNOWN_FUNCTION_LEVEL_CYCLES: set[frozenset[str]] = set()
KNOWN_PRIVATE: set[tuple[str, str]] = set()  # (importer, "module._name")


@dataclass(frozen=True)
class Edge:
    importer: str  # module name, e.g. "correlate.session"
    target: str  # a project module or package, e.g. "ingest.dataset" or "ingest"
    names: tuple[str, ...]  # the names a `from` import takes from target (empty for `import`)
    line: int
    level: str  # "module" (runs on import), "function" (inside a def), "typing" (TYPE_CHECKING)


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in LAYERS:
        for path in sorted((REPO / pkg).rglob("*.py")):
            found[_module_name(path)] = path
        for path in sorted((REPO / pkg).rglob("*.c")):  # a native module (built from its C source)
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve_from(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, level: str) -> Iterator[tuple[ast.AST, str]]:
    """Every node with the level its imports run at: module, function or typing."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield child, level
            yield from _walk(child, "function" if level == "module" else level)
        elif isinstance(child, ast.If) and _type_checking(child.test):
            yield child, level
            for stmt in child.body:
                yield stmt, "typing"
                yield from _walk(stmt, "typing")
            for stmt in child.orelse:
                yield stmt, level
                yield from _walk(stmt, level)
        else:
            yield child, level
            yield from _walk(child, level)


def _project(name: str) -> bool:
    return name.split(".")[0] in LAYERS


def _edges(importer: str, tree: ast.Module) -> Iterator[Edge]:
    for node, level in _walk(tree, "module"):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _project(alias.name):
                    yield Edge(importer, alias.name, (), node.lineno, level)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_from(importer, node)
            if not _project(module):
                continue
            plain = []
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if sub in MODULES:  # `from pkg import submodule`: an edge to the submodule
                    yield Edge(importer, sub, (), node.lineno, level)
                else:
                    plain.append(alias.name)
            if plain:
                yield Edge(importer, module, tuple(plain), node.lineno, level)


def _trees() -> dict[str, ast.Module]:
    return {
        name: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for name, path in MODULES.items()
        if path.suffix == ".py"
    }


TREES = _trees()
EDGES = [e for name, tree in TREES.items() for e in _edges(name, tree)]


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def _where(e: Edge) -> str:
    return f"{MODULES[e.importer].relative_to(REPO)}:{e.line}"


# ---- 1. imports point down ----------------------------------------------------------------------


def upward_imports() -> list[Edge]:
    return [e for e in EDGES if _layer(e.target) > _layer(e.importer)]


def correlate_uses_of_ingest() -> dict[str, list[str]]:
    """Which ingest modules correlate imports (let through; docs: its dataset handle and layout)."""
    out: dict[str, list[str]] = {}
    for e in EDGES:
        if e.importer.startswith("correlate") and e.target.split(".")[0] == "ingest":
            out.setdefault(e.target, []).append(f"{_where(e)} ({e.level})")
    return out


def test_imports_point_down_only():
    new = [
        f"{_where(e)}: {e.importer} imports {e.target} ({e.level})"
        for e in upward_imports()
        if (e.importer, e.target) not in KNOWN_UPWARD
    ]
    assert new == [], "an import from a layer above:\n" + "\n".join(new)


def test_nothing_imports_mcp_server_and_ingest_imports_no_other_package():
    bad = [
        f"{_where(e)}: {e.target}"
        for e in EDGES
        if (e.target.startswith("mcp_server") and not e.importer.startswith("mcp_server"))
        or (e.importer.startswith("ingest") and not e.target.startswith("ingest"))
    ]
    assert bad == []


def test_correlate_uses_only_what_ingest_offers_it():
    # any ingest module is allowed; this names them (run with -s to see where) so a new one is a
    # visible change of the layering, not a silent one
    uses = correlate_uses_of_ingest()
    for target, where in sorted(uses.items()):
        print(f"correlate uses {target}: {', '.join(where)}")
    assert all(t == "ingest" or t.startswith("ingest.") for t in uses)


def test_known_upward_imports_still_exist():
    # an allow-list entry whose violation is gone must go too, or it would let a new one through
    seen = {(e.importer, e.target) for e in upward_imports()}
    assert KNOWN_UPWARD <= seen, f"fixed, remove from KNOWN_UPWARD: {sorted(KNOWN_UPWARD - seen)}"


# ---- 2. no import cycles ----------------------------------------------------------------------


def _graph(levels: set[str]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in TREES}
    for e in EDGES:
        if e.level in levels and e.target in MODULES and e.target != e.importer:
            graph[e.importer].add(e.target)
    return graph


def cycles(levels: set[str]) -> list[frozenset[str]]:
    return strongly_connected(_graph(levels))


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

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
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _describe(comp: frozenset[str], levels: set[str]) -> str:
    lines = [
        f"{e.importer} -> {e.target} ({_where(e)}, {e.level})"
        for e in EDGES
        if e.level in levels and e.importer in comp and e.target in comp and e.target != e.importer
    ]
    return "cycle among " + ", ".join(sorted(comp)) + ":\n  " + "\n  ".join(sorted(lines))


def test_no_import_cycle_at_module_level():
    new = [_describe(c, {"module"}) for c in cycles({"module"}) if c not in KNOWN_CYCLES]
    assert new == [], "\n".join(new)


def test_no_import_cycle_counting_imports_inside_functions():
    levels = {"module", "function"}
    found = cycles(levels)
    known = KNOWN_FUNCTION_LEVEL_CYCLES | KNOWN_CYCLES
    new = [_describe(c, levels) for c in found if c not in known]
    assert new == [], "\n".join(new)
    gone = KNOWN_FUNCTION_LEVEL_CYCLES - set(found)
    assert not gone, f"fixed, remove from KNOWN_FUNCTION_LEVEL_CYCLES: {sorted(map(sorted, gone))}"


def test_known_cycles_still_exist():
    gone = KNOWN_CYCLES - set(cycles({"module"}))
    assert not gone, f"fixed, remove from KNOWN_CYCLES: {sorted(map(sorted, gone))}"


# ---- 3. private names stay in their module ------------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def _private_module_ok(importer: str, module: str) -> bool:
    """A package's private module, imported by a module of that same package."""
    return _package_of(importer) == module.rpartition(".")[0]


def private_imports() -> list[tuple[str, str, str]]:
    """(where, importer, "module._name") for every private name that crosses a module."""
    out = []
    for e in EDGES:
        for name in e.names:  # from module import _name
            if _private(name):
                out.append((_where(e), e.importer, f"{e.target}.{name}"))
        parts = e.target.split(".")  # import pkg._private / from pkg import _private (a module)
        if any(_private(p) for p in parts) and not _private_module_ok(e.importer, e.target):
            out.append((_where(e), e.importer, e.target))
    for importer, tree in TREES.items():  # module._name as an attribute
        for line, name in private_attributes(importer, tree):
            out.append((f"{MODULES[importer].relative_to(REPO)}:{line}", importer, name))
    return out


def private_attributes(importer: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, "module._name") where a private name is read off another project module."""
    aliases = _module_aliases(importer, tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = _dotted(node.value)
            if base is None:
                continue
            head, _, rest = base.partition(".")
            if head in aliases:
                module = ".".join(filter(None, [aliases[head], rest]))
                if module in MODULES and module != importer:
                    yield node.lineno, f"{module}.{node.attr}"


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _module_aliases(importer: str, tree: ast.Module) -> dict[str, str]:
    """Local names bound to project modules anywhere in the file: `import a.b` binds a."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _project(alias.name):
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_from(importer, node)
            for alias in node.names:
                if f"{module}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
    return aliases


def test_no_private_name_crosses_a_module():
    new = [
        f"{where}: {importer} uses {name}"
        for where, importer, name in private_imports()
        if (importer, name) not in KNOWN_PRIVATE
    ]
    assert new == [], "a private name used outside its module:\n" + "\n".join(new)


def test_known_private_uses_still_exist():
    seen = {(importer, name) for _, importer, name in private_imports()}
    assert KNOWN_PRIVATE <= seen, f"fixed, remove from KNOWN_PRIVATE: {sorted(KNOWN_PRIVATE - seen)}"


# ---- the checker itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from correlate.session import open_dataset", [("module", "correlate.session")]),
        ("def f():\n    from escalation import api", [("function", "escalation.api")]),
        (
            "if TYPE_CHECKING:\n    from mcp_server.errors import UsageError",
            [("typing", "mcp_server.errors")],
        ),
        ("import ingest.dataset as d", [("module", "ingest.dataset")]),
    ],
)
def test_edges_are_found_with_their_level(source, expected):
    got = [(e.level, e.target) for e in _edges("ingest.fake", ast.parse(source))]
    assert got == expected


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [frozenset({"a", "b", "c"})]


def test_private_attributes_are_found():
    tree = ast.parse(
        "import ingest.writer\nfrom ingest import lockfile as lf\n"
        "ingest.writer._release_lock(1)\nlf._close(2)\nself._x = 3\nlf.__name__\n"
    )
    assert list(private_attributes("correlate.fake", tree)) == [
        (3, "ingest.writer._release_lock"),
        (4, "ingest.lockfile._close"),
    ]
