"""The package's layout is its architecture: a folder per stage, imports running one way, no circles."""

import ast
import importlib.util
from pathlib import Path

import painters

ROOT = Path(painters.__file__).parent

# What each stage may import (besides itself and the package root, which holds only the public API).
ALLOWED = {
    "core": set(),
    "models": {"core"},
    "tasks": {"core", "models"},
    "analysis": {"core", "models", "tasks"},
    "tools": {"core", "models"},
    "study": {"core", "models", "tasks", "tools"},
    "plan_search": {"core", "models", "tasks", "analysis", "study"},
    "report": {"core", "tasks", "analysis", "study"},
}
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every painters module `path` imports, at the top or inside a function (`from X import m` names m)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("painters")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("painters"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if importlib.util.find_spec(node.module).submodule_search_locations
                          and _exists(submodule) else node.module)  # fmt: skip
    return found


def _exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


GRAPH = {_module_name(path): _imports(path) for path in sorted(ROOT.rglob("*.py")) if path.name != "__main__.py"}


def _stage(module: str) -> str | None:
    """The stage folder a module belongs to; None for the top (paper, checks, cli) and the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_stages_import_only_the_stages_below_them():
    wrong = []
    for module, imports in GRAPH.items():
        stage = _stage(module)
        if stage is None:
            continue  # the top: paper, checks, cli may import any stage
        for target in imports:
            other = _stage(target)
            if target != "painters" and other != stage and other not in ALLOWED[stage]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_stage_imports_the_top():
    top = {"painters.paper", "painters.checks", "painters.cli"}
    assert [f"{m} -> {t}" for m, ts in GRAPH.items() if _stage(m) for t in ts if t.startswith(tuple(top))] == []


def test_no_import_circles():
    """Depth-first search for a cycle among modules (a package's own __init__ importing its modules excepted)."""
    edges = {m: {t for t in ts if t in GRAPH and not m.startswith(t + ".")} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_every_stage_says_what_it_does_and_may_import():
    for stage in ALLOWED:
        source = (ROOT / stage / "__init__.py").read_text()
        tree = ast.parse(source)
        assert ast.get_docstring(tree), stage
        assert len(tree.body) == 1, f"{stage}/__init__.py holds code besides its docstring"
        assert "may import" in source.lower() or "imports nothing" in source.lower(), stage


def test_modules_stay_small():
    long = {
        str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_public_api_resolves():
    assert sorted(painters.__all__) == sorted(
        ["Plan", "PlanError", "PaintersError", "apply_plan", "evaluate", "hidden_states", "importance", "load_model",
         "search", "similarity", "__version__"]
    )  # fmt: skip
    for name in painters.__all__:
        assert getattr(painters, name) is not None
    assert (
        painters.Plan.resolve("skip:n=2", 6) == painters.Plan.variant("skip", 6, n=2) == painters.Plan.parse("0-1,4-5")
    )
