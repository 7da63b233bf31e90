"""The layout is the architecture: vae/'s subpackages import only downward (in the order LAYERS gives, read
from the source with ast), nothing imports in a circle, no module grows past 500 lines, and none is named
for having no subject (common, utils, helpers, misc)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# vae/'s rooms, bottom first: each may import those before it, never one after it.
LAYERS = ("data", "config", "nets", "render", "analysis", "checkpoint", "training", "browser", "cli", "__main__",
          "__init__")
MAX_LINES = 500
VAGUE_NAMES = {"common", "utils", "util", "helpers", "helper", "misc"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    """Inside `if TYPE_CHECKING:`: names for annotations, never run."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path, modules: set[str] = frozenset()) -> set[str]:
    """The modules a file imports anywhere in it (functions too), as absolute names; `from pkg import mod`
    counts as mod alone when mod is one of modules."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            named = {f"{base}.{alias.name}" for alias in node.names}
            found |= named & modules
            if not named <= modules:  # names defined in base (its __init__ for a package)
                found.add(base)
    return found


def project_graph(folder: str) -> dict[str, set[str]]:
    """{module: the project modules it imports} for every .py under folder."""
    files = sorted((ROOT / folder).rglob("*.py"))
    modules = {module_name(f): f for f in files}
    return {name: {m for m in imports_of(path, set(modules)) if m in modules and m != name}
            for name, path in modules.items()}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import that runs up LAYERS, or into its own package's __init__ from inside it (a circle through the
    package), as 'importer -> imported'."""
    bad = []
    for module, targets in graph.items():
        for target in targets:
            mine, theirs = LAYERS.index(layer_of(module)), LAYERS.index(layer_of(target))
            into_own_init = theirs == mine and target.count(".") == 1 and module.startswith(target + ".")
            if theirs > mine or into_own_init:
                bad.append(f"{module} -> {target}")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle (one listing per circle found by a depth-first walk)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_vae_imports_run_only_downward():
    graph = project_graph("vae")
    assert set(map(layer_of, graph)) <= set(LAYERS), "a new room in vae/: give it its place in LAYERS"
    assert not upward_imports(graph), f"imports against the layers {LAYERS}: {upward_imports(graph)}"


@pytest.mark.parametrize("folder", ["vae", "pages"])
def test_no_import_circles(folder):
    graph = project_graph(folder)
    assert not cycles(graph), f"import circles: {cycles(graph)}"


def test_the_checks_catch_what_they_guard():
    """An upward import, an import of the package's own __init__ from inside it, and a circle are each found."""
    graph = {"vae.data.loading": {"vae.config"}, "vae.config": {"vae.data"}, "vae.data.catalog": {"vae.data"},
             "vae.nets.a": {"vae.nets.b"}, "vae.nets.b": {"vae.nets.a"}}
    assert upward_imports(graph) == ["vae.data.catalog -> vae.data", "vae.data.loading -> vae.config"]
    assert cycles(graph) == [["vae.nets.a", "vae.nets.b", "vae.nets.a"]]


def test_vae_never_imports_pages_or_streamlit():
    for path in (ROOT / "vae").rglob("*.py"):
        outside = {m for m in imports_of(path) if m.split(".")[0] in ("pages", "streamlit")}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


@pytest.mark.parametrize("folder", ["vae", "pages"])
def test_modules_are_small_and_named_for_what_they_hold(folder):
    for path in sorted((ROOT / folder).rglob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES}): split it by concern"
        assert path.stem not in VAGUE_NAMES, f"{path.relative_to(ROOT)}: name the module for what it holds"
