"""The architecture as a checked contract: the import-linter contracts in pyproject.toml, no import
circle anywhere in the package (imports inside functions included), imports inside functions only
to defer a heavy dependency, and rooms small enough to read at once."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "montage"
# montage modules a function may import late: they load a heavy dependency themselves (numba)
HEAVY = {"montage._kernels", "montage._patch_kernels"}   # numba: imported where a kernel runs
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 70


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _absolute(module, path, node):
    """The module an ``import`` / ``from`` statement names, resolved against ``module``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level == 0:
        return [node.module]
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    target = ".".join(base + ([node.module] if node.module else []))
    return [target] if node.module else [f"{target}.{a.name}" for a in node.names]


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_import_circle_in_the_package():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("montage", cache_dir=None)
    modules = sorted(graph.modules)
    edges = {m: {n for n in graph.find_modules_directly_imported_by(m)
                 if n.startswith("montage") and not m.startswith(n + ".")} for m in modules}
    assert "montage.models" in edges["montage.cli"] and "montage.net" in edges["montage.graph"]   # read at all
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):     # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))
    sys.setrecursionlimit(10000)
    for m in modules:
        if m not in index:
            visit(m)
    assert circles == [], circles


def test_imports_inside_functions_only_defer_heavy_dependencies():
    late = []
    for module, path in _modules():
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    late += [f"{module}:{node.lineno} imports {t}" for t in _absolute(module, path, node)
                             if t.startswith("montage") and t not in HEAVY]
    assert late == []


def test_modules_and_functions_stay_small():
    big = []
    for module, path in _modules():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            big.append(f"{module}: {len(text.splitlines())} lines")
        for fn in ast.walk(ast.parse(text)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = fn.end_lineno - fn.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    big.append(f"{module}.{fn.name}: {n} lines")
    for script in sorted((PACKAGE / "viewer").glob("*.js")):
        n = len(script.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            big.append(f"{script.name}: {n} lines")
    assert big == []
