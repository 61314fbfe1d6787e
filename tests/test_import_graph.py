"""mtlcore's import graph: no circles, and the light parts stay light.

A student reading the engine should be able to start at the bottom
(``config``, ``registry``, ``home``) and climb: every package or top-level
module of mtlcore imports only what sits below it. Three checks:

- every mtlcore module imports on its own, as the first mtlcore module of a
  fresh interpreter (a circle of imports shows as an ImportError there,
  depending on which module comes first, so each one comes first once);
- the static graph of imports between mtlcore's packages and top-level
  modules (read with ``ast``, imports inside functions included: a lazy
  import is still a dependency) has no cycle;
- ``import mtlcore.config``, ``mtlcore.home`` (the data folder) and
  ``mtlcore.charts`` do not load torch (pages and the command line import
  them to show settings, paths and figures).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mtlcore"


def module_names() -> list[str]:
    """Every module of mtlcore, dotted (packages by their own name)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


# ----- (a) each module imports as the first of a fresh interpreter ----------------------------

# Runs in one subprocess. A first child imports every mtlcore module and says which other modules
# (torch above all) that loaded; the parent imports those, and no mtlcore module, then forks one
# child per mtlcore module, which imports it as the first mtlcore module it sees. A fork is a fresh
# interpreter as far as mtlcore is concerned, and costs milliseconds instead of the seconds that
# starting Python and importing torch again would.
FORK_EACH = r"""
import importlib, json, os, sys, traceback
names = json.loads(sys.argv[1])

def in_child(work):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, work().encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()

def import_all():
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    return json.dumps(sorted(m for m in sys.modules if m.split(".")[0] not in ("mtlcore", "__main__")))

def import_one(name):
    try:
        importlib.import_module(name)
    except SystemExit:
        pass                                   # a module that parses arguments when run
    except ModuleNotFoundError as error:       # an optional library (ray) that is not installed is no circle
        if not error.name or error.name.split(".")[0] == "mtlcore":
            return json.dumps([traceback.format_exc(limit=-3), []])
    except BaseException:
        return json.dumps([traceback.format_exc(limit=-3), []])
    return json.dumps(["", [m for m in sys.modules if m.startswith(name + ".")]])

for other in json.loads(in_child(import_all)):
    try:
        importlib.import_module(other)
    except BaseException:
        pass
assert not [m for m in sys.modules if m == "mtlcore" or m.startswith("mtlcore.")]
failures, covered = {}, set()
for name in names:  # a package comes before its modules
    if name in covered:
        # Importing it first means importing its package first (Python does that), and the package
        # imports it: the same sequence as the package's own child, already run.
        continue
    text, loaded = json.loads(in_child(lambda: import_one(name)))
    if text:
        failures[name] = text
    covered.update(loaded)
print(json.dumps(failures))
"""


def run_python(code: str, *args: str, bytecode: Path | None = None) -> str:
    """The last line that ``python -c code args`` prints; ``bytecode``: a folder to keep compiled modules in."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "CUDA_VISIBLE_DEVICES": ""}
    if bytecode is not None:
        # Compiled once by the probe, read by every child (with PYTHONDONTWRITEBYTECODE each child
        # would compile mtlcore again: most of its time), and kept out of the working tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_every_mtlcore_module_imports_first_in_a_fresh_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))  # imported datasets are looked for here: none
    names = [n for n in module_names() if n != "mtlcore.__main__"]
    failures = json.loads(run_python(FORK_EACH, json.dumps(names), bytecode=tmp_path / "bytecode"))
    assert not failures, "\n".join(f"{name}:\n{text}" for name, text in failures.items())


# ----- (b) the static graph between packages has no cycle -------------------------------------

def node_of(module: str) -> str | None:
    """The package or top-level module of mtlcore that ``module`` belongs to (None: mtlcore itself)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "mtlcore" and len(parts) > 1 else None


def imported_modules(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import in ``path``, wherever it stands.

    Left out: imports under ``if TYPE_CHECKING:`` (types only, never run),
    and those inside a module-level ``__getattr__`` (PEP 562): that is an
    old import path kept for callers of a name that moved, loaded only when
    that old name is used, and never by the module's own code.
    """
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if top and isinstance(child, ast.FunctionDef) and child.name == "__getattr__":
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, False)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if child.module:
                    found.append((target, child.lineno))
                else:  # from . import a, b: each is a module
                    found.extend((f"{target}.{alias.name}", child.lineno) for alias in child.names)
            visit(child, False)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return found


def package_graph() -> dict[str, dict[str, list[str]]]:
    """node -> {node it imports: ["module:line", ...]} between mtlcore's packages and top-level modules."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        source = node_of(module)
        if source is None:  # mtlcore/__init__.py: the package's lazy face, above everything
            continue
        for target, line in imported_modules(path, module):
            if not target.startswith("mtlcore."):
                continue
            if node_of(target) not in (None, source):
                graph[source][node_of(target)].append(f"{module}:{line}")
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    """One cycle of ``graph`` as a list of nodes (first == last), or [] when there is none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_no_cycle_between_mtlcore_packages():
    graph = package_graph()
    assert graph["mtlcore.engine"], "the graph reader found no imports at all"
    cycle = find_cycle(graph)
    edges = [f"{a} -> {b} ({', '.join(graph[a][b][:3])})" for a, b in zip(cycle, cycle[1:])]
    assert not cycle, "mtlcore's packages import each other in a circle:\n" + "\n".join(edges)


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b": ["a:1"]}, "b": {"c": ["b:1"]}, "c": {"a": ["c:1"]}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ["a:1"]}, "b": {}}) == []


def test_the_graph_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .types import T\n"
                      "def f():\n    from .data import load\n\ndef __getattr__(name):\n    from .old import name\n")
    assert imported_modules(source, "mtlcore.example") == [("os", 1), ("typing", 2), ("mtlcore.data", 6)]


# ----- (c) the light parts do not load torch ------------------------------------------------

LIGHT = ("mtlcore.config", "mtlcore.home", "mtlcore.charts")


def test_config_the_data_folder_and_charts_import_without_torch():
    code = ("import importlib, json, sys\n"
            "loaded = {}\n"
            "for name in json.loads(sys.argv[1]):\n"
            "    importlib.import_module(name)\n"
            "    loaded[name] = 'torch' in sys.modules\n"
            "print(json.dumps(loaded))\n")
    for name in LIGHT:  # each in its own interpreter: one must not hide another's torch
        assert json.loads(run_python(code, json.dumps([name]))) == {name: False}, f"import {name} loads torch"


def test_the_light_config_still_offers_every_old_name():
    from mtlcore.config import (DIAGNOSTICS_COSINES, OPTIMIZERS, PRECISIONS, REGRESSION_LOSSES, SCHEDULES, TRUNKS,
                                ExperimentConfig, validate)

    assert "adam" in OPTIMIZERS and "cosine" in SCHEDULES and "mlp" in TRUNKS and "mse" in REGRESSION_LOSSES
    assert "bfloat16" in PRECISIONS and "features" in DIAGNOSTICS_COSINES
    assert validate(ExperimentConfig()) == ExperimentConfig()
