"""The command line as DESIGN.md promises it."""
import json
import subprocess
import sys

from PIL import Image, ImageDraw

from mtlcore.cli import main


def test_datasets_lists_every_dataset_with_its_tasks(capsys):
    assert main(["datasets", "--json"]) == 0
    listing = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert {"shapes", "digits", "multidigits", "synthetic"} <= set(listing)
    tasks = {t["name"]: t for t in listing["shapes"]["tasks"]}
    assert tasks["shape"]["kind"] == "classification" and tasks["shape"]["num_classes"] == 4
    assert tasks["size"]["kind"] == "regression" and tasks["size"]["metric"] == "mae"


def test_train_writes_config_metrics_summary_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--set", "dataset.name=digits", "--set", "tasks=digit,ink", "--set", "train.epochs=1",
                 "--set", "train.max_samples=300", "--set", "device=cpu", "--out", str(out), "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["test"]["digit"]) >= {"accuracy"}
    assert set(summary["test"]["ink"]) >= {"mae"}
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"step", "epoch"}
    assert json.loads((out / "config.json").read_text())["tasks"] == ["digit", "ink"]
    assert (out / "checkpoint.pt").is_file()


def test_bad_settings_give_one_sentence_and_a_non_zero_exit(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mtlcore", "train", "--set", "tasks=shape,flavour", "--out", str(tmp_path / "x")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "has no task 'flavour'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_predict_prints_every_task(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--set", "dataset.n_samples=300", "--set", "tasks=shape,color,size", "--set", "train.epochs=1",
                 "--set", "device=cpu", "--out", str(out), "--quiet"]) == 0
    image = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(image).polygon([(100, 30), (30, 170), (170, 170)], fill=(230, 20, 20))
    image.save(tmp_path / "triangle.png")
    capsys.readouterr()
    assert main(["predict", "--run", str(out), "--image", str(tmp_path / "triangle.png")]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert set(prediction) == {"shape", "color", "size"}
    assert prediction["shape"]["class"] in {"circle", "square", "triangle", "star"}
    assert isinstance(prediction["size"]["value"], float)


def test_predict_rejects_a_text_file(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--set", "dataset.n_samples=300", "--set", "tasks=shape", "--set", "train.epochs=1",
          "--set", "device=cpu", "--out", str(out), "--quiet"])
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    capsys.readouterr()
    assert main(["predict", "--run", str(out), "--image", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not an image" in err


def test_predict_without_a_checkpoint_says_so(tmp_path, capsys):
    assert main(["predict", "--run", str(tmp_path), "--image", "x.png"]) == 2
    assert "No checkpoint" in capsys.readouterr().err
