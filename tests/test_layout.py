"""The package's layout: a ground floor and wings, arrows one way, no import cycle.

Every ``import`` in ``src/justrl`` is read with :mod:`ast`, function-level ones included, and
resolved to the module it names (``from justrl.x import y`` names ``justrl.x.y`` when that is a
module, else ``justrl.x``). The table below is the one in the package docstring and the README's
map: a wing may import only the wings it lists.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "justrl"

GROUND = {"recipe", "grpo", "errors", "config", "io", "logs"}
MAY_IMPORT = {
    "ground": set(),
    "data": {"ground"},
    "verifiers": {"ground"},
    "generate": {"ground"},
    "dynamics": {"ground", "data"},
    "train": {"ground", "data", "verifiers", "generate", "dynamics"},
    "evaluate": {"ground", "data", "verifiers", "generate", "dynamics"},
    "verl_engine": {"ground", "data", "verifiers"},
    "integrations": {"ground", "data", "verifiers", "generate", "dynamics", "train", "evaluate", "verl_engine"},
    "cli": {"ground", "data", "verifiers", "generate", "dynamics", "train", "evaluate", "verl_engine",
            "integrations"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "face"  # justrl/__init__.py: the version and the table of moved paths
    return "ground" if parts[1] in GROUND else parts[1]


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # import justrl.x.y.z where z is a name
                name = name.rpartition(".")[0]
            if name.startswith("justrl") and name != module:
                found.add(name)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_top_level_holds_only_the_ground_floor_and_wings():
    top_modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_modules == GROUND
    wings = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert wings <= set(MAY_IMPORT) - {"ground"}, wings - set(MAY_IMPORT)


def test_each_wing_says_what_it_offers():
    for name in {wing(m) for m in MODULES} - {"ground", "face"}:
        init = PACKAGE / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "In:" in doc and "Out:" in doc and "Imports:" in doc, name
        if name != "cli":
            assert "__all__" in init.read_text(), name


def test_arrows_run_down():
    wrong = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                   if "face" not in (wing(m), wing(t)) and wing(m) != wing(t) and wing(t) not in MAY_IMPORT[wing(m)])
    assert not wrong, "imports against the layout:\n" + "\n".join(wrong)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_even_through_function_level_imports():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_old_module_paths_still_import_with_a_warning():
    import importlib

    import justrl

    for old, new in justrl.MOVED.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        deprecation = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        assert bool(deprecation) == (old not in justrl.STABLE_ALIASES), old


@pytest.mark.parametrize("name", ["justrl.trainer", "justrl.grading"])
def test_public_names_keep_working(name):
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(name)
    assert callable(getattr(module, {"justrl.trainer": "train", "justrl.grading": "grade_dir"}[name]))
