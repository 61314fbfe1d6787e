"""Export: a trained run as a file plain PyTorch loads, and as a standalone training script."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtlcore.cli import main
from mtlcore.export import export_model, render_script, script_problem
from mtlcore.predict import load_model

REPO = Path(__file__).resolve().parents[1]


def train(out, *settings):
    flat = ["dataset.name=shapes", "dataset.n_samples=300", "train.epochs=1", "model.width=8", "device=cpu",
            *settings]
    args = ["train", "--out", str(out), "--quiet"]
    for s in flat:
        args += ["--set", s]
    assert main(args) == 0
    return out / "checkpoint.pt"


def plain_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python that cannot import mtlcore: isolated mode, repo off sys.path, another folder."""
    # Only the repository itself is taken off the path: a virtual environment may live inside it
    # (CI's .ci-venv), and its site-packages must stay, or torch itself goes missing.
    guard = ("import os, sys\n"
             f"sys.path = [p for p in sys.path if p and os.path.realpath(p) != {str(REPO.resolve())!r}]\n")
    return subprocess.run([sys.executable, "-I", "-c", guard + code], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("arch,tasks", [("hard", "shape,color,size"), ("soft", "shape,size"),
                                        ("cross_stitch", "shape,color"), ("mmoe", "shape,size"),
                                        ("single", "color")])
def test_the_exported_model_predicts_what_the_lab_predicts(tmp_path, arch, tasks):
    checkpoint = train(tmp_path / "run", f"model.arch={arch}", f"tasks={tasks}")
    loaded = load_model(checkpoint)
    path, meta = export_model(loaded, tmp_path / "model.pt2")
    x = torch.randn(5, *loaded.input_shape)
    with torch.no_grad():
        expected = loaded.model(x)
    reloaded = torch.export.load(str(path)).module()
    got = reloaded(x)
    assert list(got) == list(loaded.tasks)
    for task in loaded.tasks:
        torch.testing.assert_close(got[task], expected[task], rtol=1e-4, atol=1e-5)
    info = json.loads(meta.read_text())
    assert [t["name"] for t in info["tasks"]] == list(loaded.tasks)
    assert info["input"]["input_shape"] == list(loaded.input_shape)


def test_the_exported_file_runs_in_a_process_that_never_imports_mtlcore(tmp_path):
    checkpoint = train(tmp_path / "run", "tasks=shape,size", "loss.regression=gaussian_nll")
    loaded = load_model(checkpoint)
    assert main(["export", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out" / "model.pt2")]) == 0
    x = torch.randn(3, *loaded.input_shape)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = loaded.model(x)
    code = ("import json, torch\n"
            "model = torch.export.load('out/model.pt2').module()\n"
            "meta = json.load(open('out/model.json'))\n"
            "out = model(torch.load('x.pt'))\n"
            "assert 'mtlcore' not in sys.modules, 'mtlcore was imported'\n"
            "torch.save({t: v.detach() for t, v in out.items()}, 'y.pt')\n"
            "print(json.dumps([t['name'] for t in meta['tasks']]))\n")
    proc = plain_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == ["shape", "size"]
    got = torch.load(tmp_path / "y.pt")
    for task in ("shape", "size"):
        torch.testing.assert_close(got[task], expected[task], rtol=1e-4, atol=1e-5)
    assert got["size"].shape == (3, 2)  # mean and log-variance


def test_the_standalone_script_trains_without_mtlcore_and_beats_chance(tmp_path):
    train(tmp_path / "run", "tasks=color,size", "dataset.n_samples=400")
    script = tmp_path / "code" / "train_color.py"
    assert main(["export", "--run", str(tmp_path / "run"), "--script", str(script)]) == 0
    text = script.read_text()
    assert "import mtlcore" not in text and "from mtlcore" not in text
    assert (tmp_path / "code" / "train_color_data.pt").is_file()
    proc = plain_python("import runpy; sys.argv = ['train_color.py', '--data', 'train_color_data.pt', "
                        "'--epochs', '1']; runpy.run_path('train_color.py', run_name='__main__')",
                        tmp_path / "code")
    assert proc.returncode == 0, proc.stderr[-2000:]
    accuracy = float(re.search(r"^test .*color accuracy ([0-9.]+)", proc.stdout, re.M).group(1))
    assert accuracy > 0.25 + 0.1  # four colours: chance is 0.25
    assert re.search(r"size mae [0-9.]+", proc.stdout)


def test_the_script_refuses_architectures_it_does_not_cover_in_one_sentence(tmp_path, capsys):
    train(tmp_path / "run", "model.arch=soft", "tasks=shape,color")
    assert main(["export", "--run", str(tmp_path / "run"), "--script", str(tmp_path / "s.py")]) == 2
    err = capsys.readouterr().err
    assert "hard or single" in err and "soft" in err and err.count(".") <= 3
    assert not (tmp_path / "s.py").exists()
    problem = script_problem(load_model(tmp_path / "run" / "checkpoint.pt").config)
    with pytest.raises(ValueError, match="soft"):
        render_script(load_model(tmp_path / "run" / "checkpoint.pt").config)
    assert problem


def test_export_finds_a_run_of_the_store_by_its_id(tmp_path, monkeypatch, capsys):
    from mtlcore.runs import RunStore
    from mtlcore.config import ExperimentConfig
    import shutil

    monkeypatch.setenv("MTL_HOME", str(tmp_path / "home"))
    checkpoint = train(tmp_path / "run", "tasks=shape")
    store = RunStore()
    run_id = store.add_run(ExperimentConfig.from_flat({"tasks": "shape"}), label="x")
    run_id = getattr(run_id, "id", run_id)
    store.checkpoint_path(run_id).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoint, store.checkpoint_path(run_id))
    assert main(["export", "--run", run_id, "--out", str(tmp_path / "m.pt2")]) == 0
    assert (tmp_path / "m.pt2").is_file() and (tmp_path / "m.json").is_file()
    assert main(["export", "--run", "no-such-run", "--out", str(tmp_path / "n.pt2")]) == 2
    assert "no run folder, checkpoint or run id" in capsys.readouterr().err
