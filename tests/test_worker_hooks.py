"""The worker knows nothing of studies: the command line hands it the studies' hook.

Studies build on runs (they queue runs through the Runner), so the runs
package must not reach back into them: a student reading ``mtlcore/runs``
finds no study there, and the import graph has no circle. The studies
still move on after every run, because ``python -m mtlcore worker`` (which
the app's Runner starts) gives the worker ``advance_studies`` to call.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mtlcore
from mtlcore.cli import main
from mtlcore.config import ExperimentConfig
from mtlcore.runs import Runner, RunStore
from mtlcore.runs import worker as worker_module
from mtlcore.studies import StudySpec, StudyStore, advance_studies, default_base

RUNS = Path(mtlcore.__file__).parent / "runs"


def imported_names(path: Path) -> list[str]:
    """Every module an ``import`` in the file names, at any depth (function-level imports too), made absolute."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "mtlcore.runs." if node.level == 1 else "mtlcore." if node.level == 2 else ""
            names.append(base + (node.module or ""))
    return names


def test_no_module_of_the_runs_package_imports_the_studies():
    offenders = {path.name: name for path in sorted(RUNS.glob("*.py")) for name in imported_names(path)
                 if name.startswith("mtlcore.studies")}
    assert offenders == {}


def test_importing_the_runs_package_loads_no_study_module():
    code = ("import sys, mtlcore.runs, mtlcore.runs.worker\n"
            "print(sorted(m for m in sys.modules if m.startswith('mtlcore.studies')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(mtlcore.__file__).parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_worker_command_hands_the_worker_the_studies_hook(tmp_path, monkeypatch):
    given = {}

    def fake_run_worker(home, **options):
        given.update(options)
        return 0

    monkeypatch.setattr("mtlcore.runs.run_worker", fake_run_worker)
    assert main(["worker", "--home", str(tmp_path / "home"), "--once"]) == 0
    assert list(given["after_each_run"]) == [advance_studies]


def test_a_failing_hook_is_logged_and_the_next_hook_still_runs(tmp_path, capsys):
    store = RunStore(tmp_path / "home")
    called = []

    def broken(store):
        raise RuntimeError("a study's bookkeeping broke")

    worker_module.call_hooks([broken, called.append], store)
    assert called == [store]
    assert "a study's bookkeeping broke" in capsys.readouterr().err


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()  # the worker sets its own; later tests keep theirs
    yield
    torch.set_num_threads(threads)


def test_the_worker_command_finishes_a_study_bigger_than_the_queue_cap_with_no_page_open(
        tmp_path, tiny, keep_torch_threads, capsys):
    store = RunStore(tmp_path / "home")
    base = ExperimentConfig.from_flat({**tiny, "tasks": "shape,color,size"}, default_base("stl-vs-mtl"))
    studies = StudyStore(store)
    record = studies.start(StudySpec("stl-vs-mtl", base, seeds=1), Runner(store, max_workers=0), owner="alice")
    assert record.total == 4 and len(store.list_runs(study_id=record.id)) == 3  # the cap of 3; one waits

    assert main(["worker", "--home", str(store.home), "--idle-exit", "0"]) == 0
    done = studies.get(record.id)
    assert done.state == "finished" and done.progress_text == "4 of 4 runs done"
    assert "training 4 run(s)" in capsys.readouterr().out
