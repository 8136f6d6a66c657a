"""The package's import graph: no cycles (not even inside functions), no borrowed `_private`
names, and the layering of STYLE.md ("Who may import whom").

Every module under newsletter/ is parsed with `ast`; every import counts, at module level, inside
functions and under `if TYPE_CHECKING:` alike, relative ones resolved. Nothing is imported.
Run against another tree with `NEWSLETTER_ROOT=/path/to/checkout pytest tests/test_import_graph.py`.
"""
from __future__ import annotations

import ast
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

# one_pass (tests/conftest.py): it reads the code.
pytestmark = pytest.mark.one_pass

ROOT = Path(os.environ.get("NEWSLETTER_ROOT") or Path(__file__).resolve().parents[1])
PACKAGE = "newsletter"

# importer's layer -> layers it must never import (STYLE.md: "Never: services -> tasks or web;
# models -> services"; the send engine sits below the services that use it).
FORBIDDEN = {
    "models": {"services", "tasks", "web", "sending"},
    "sending": {"services", "tasks", "web"},
    "services": {"tasks", "web"},
    "tasks": {"web"},
}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a newsletter module (a package stands for its __init__)
    names: tuple[str, ...]  # the names taken from `target` (empty for a plain `import`)
    line: int


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))
    found = []
    for node in ast.walk(tree):  # the whole tree: function-level imports are imports too
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, (), node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module).split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != PACKAGE:
                continue
            names = tuple(alias.name for alias in node.names)
            submodules = [n for n in names if f"{source}.{n}" in MODULES]
            found += [Import(module, f"{source}.{n}", (), node.lineno) for n in submodules]
            rest = tuple(n for n in names if n not in submodules)
            if rest:
                found.append(Import(module, source, rest, node.lineno))
    return found


IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _edges() -> dict[str, set[str]]:
    """importer -> modules that run when it imports; importing a.b.c runs a.b first (never
    counting the importer's own enclosing packages, which are already running)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if imp.target not in MODULES:
            continue
        own = {".".join(imp.importer.split(".")[:i]) for i in range(1, imp.importer.count(".") + 2)}
        parts = imp.target.split(".")
        for i in range(1, len(parts) + 1):
            ancestor = ".".join(parts[:i])
            if ancestor in MODULES and ancestor not in own and ancestor != imp.importer:
                graph[imp.importer].add(ancestor)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as one cycle path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if node not in index:
            visit(node)
    return [_path(graph, set(component)) + [f"(all of {', '.join(component)})"] if len(component) > 2
            else _path(graph, set(component)) for component in components]


def _path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One cycle through the component's first module, for a readable message."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, set()) & component):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return sorted(component)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _where(imp: Import) -> str:
    return f"{MODULES[imp.importer].relative_to(ROOT)}:{imp.line}"


def test_the_graph_sees_the_package():
    assert len(MODULES) > 50 and len(IMPORTS) > 200  # a wrong ROOT would make every check pass


def test_no_import_cycles():
    cycles = _cycles(_edges())
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles)


def test_no_cycles_between_service_packages():
    """The domains form layers too: audience, campaigns, delivery... never import each other both ways."""
    def domain(module: str) -> str:
        return ".".join(module.split(".")[:3])

    graph: dict[str, set[str]] = defaultdict(set)
    for importer, targets in _edges().items():
        for target in targets:
            if _layer(importer) == _layer(target) == "services" and domain(importer) != domain(target):
                graph[domain(importer)].add(domain(target))
    cycles = _cycles(graph)
    assert not cycles, "service packages importing each other:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_names_from_other_modules():
    borrowed = [f"{_where(imp)}: {imp.target}.{name}" for imp in IMPORTS for name in imp.names
                if name.startswith("_") and not name.startswith("__") and imp.target != imp.importer]
    borrowed += [f"{_where(imp)}: {imp.target}" for imp in IMPORTS
                 if imp.target.rpartition(".")[2].startswith("_") and not imp.target.endswith("__")]
    assert not borrowed, "another module's _private name imported:\n" + "\n".join(borrowed)


def test_layering():
    wrong = [f"{_where(imp)}: {_layer(imp.importer)} -> {imp.target}" for imp in IMPORTS
             if _layer(imp.target) in FORBIDDEN.get(_layer(imp.importer), set())]
    assert not wrong, "imports against STYLE.md's layering:\n" + "\n".join(wrong)


SERVICE_PACKAGES = sorted(m for m in MODULES
                          if m.startswith(f"{PACKAGE}.services.") and MODULES[m].name == "__init__.py")


@pytest.mark.parametrize("module", SERVICE_PACKAGES or [pytest.param("", marks=pytest.mark.skip("flat services/"))])
def test_service_packages_are_used_through_their_public_surface(module):
    """Other packages import only the modules a service package lists in its `__all__`."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    public = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            public = set(ast.literal_eval(node.value))
    assert ast.get_docstring(tree), f"{module} has no docstring"
    outside = [f"{_where(imp)}: {imp.target}" for imp in IMPORTS
               if imp.target.startswith(module + ".") and imp.importer != module  # its own __init__ is inside
               and not imp.importer.startswith(module + ".")
               and imp.target[len(module) + 1:].split(".")[0] not in public]
    assert not outside, f"modules {module} does not list in __all__, imported from outside:\n" + "\n".join(outside)
