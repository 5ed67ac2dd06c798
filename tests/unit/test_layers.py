"""The package reads as its data flow: imports go one way, down the layers, with no cycle
between modules or between sub-packages (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "authz"

# Lowest first. A module may import only from its own layer's package or lower layers.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "celtypes"),
    ("config",),
    ("llm", "mcp", "body", "tokens", "jsonrpc", "response_view"),
    ("detectors",),
    ("identity",),
    ("schema",),
    ("attributes",),
    ("decision",),
    ("cache", "functions"),
    ("policy",),
    ("context", "deny_forms", "decide"),
    ("response", "explain"),
    ("observability",),
    ("service", "response_path"),
    ("ops", "reload", "replay", "policytest", "request_file", "devtoken"),
    ("serve_options", "health", "runtime", "server", "workers"),
    ("cli", "cli_args", "__main__"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if "_proto" in parts:
            continue
        name = ".".join(parts).removesuffix(".__init__")
        out[name] = path
    return out


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (annotations only, never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def _imports(path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("authz"):
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n in known)
    return found


GRAPH = {name: _imports(path, set(_modules())) - {name} for name, path in _modules().items()}


def _unit(module: str) -> str:
    """authz.policy.compiler -> policy; authz.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(GRAPH) == []


def test_no_import_cycle_between_subpackages() -> None:
    units: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        for target in targets:
            if _unit(module) != _unit(target) and _unit(module) and _unit(target):
                units.setdefault(_unit(module), set()).add(_unit(target))
    assert _cycles(units) == []


def test_imports_go_down_the_layers() -> None:
    rank = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    upward = []
    for module, targets in GRAPH.items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            if a and b and a != b and rank.get(b, 99) > rank.get(a, 99):
                upward.append(f"{module} -> {target}")
    unplaced = sorted({_unit(m) for m in GRAPH if _unit(m) and _unit(m) not in rank})
    assert unplaced == [], f"place these in LAYERS: {unplaced}"
    assert upward == []
