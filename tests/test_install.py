"""A fresh install has what the README promises, and the doctor says what this machine gives."""
import json
import re
import subprocess
import sys
from pathlib import Path

from mtlcore.doctor import environment_report
from mtlcore.weighting import WEIGHTINGS
from mtlcore.weighting.aggregators import REQUIRED_PACKAGES

ROOT = Path(__file__).resolve().parents[1]


def readme_methods() -> list[str]:
    """The method names in the first column of the README's "Weighting methods" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Weighting methods", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in section.splitlines():
        if row.startswith("| `"):
            first_cell = row.split("|")[1]
            names += re.findall(r"`([a-z_]+)`", first_cell)
    return names


def test_every_method_in_the_readme_is_registered_after_installing_requirements():
    methods = readme_methods()
    assert len(methods) >= 15, methods  # the table lists static/equal and 13 more
    missing = [name for name in methods if name not in WEIGHTINGS]
    assert not missing, (f"{missing} are in the README but not registered: a solver from requirements.txt "
                         "did not install (python -m mtlcore doctor says which)")


def test_requirements_spell_torchjds_extras_as_it_declares_them():
    # Older pips do not normalise `quadprog_projector`; they skip the extra and upgrad disappears.
    line = next(row for row in (ROOT / "requirements.txt").read_text().splitlines() if row.startswith("torchjd"))
    extras = re.search(r"\[(.*)\]", line).group(1).split(",")
    assert all("_" not in extra for extra in extras), line
    for package in {p for needs in REQUIRED_PACKAGES.values() for p in needs} - {"torchjd", "numpy", "clarabel"}:
        assert re.search(rf"^{package}\b", (ROOT / "requirements.txt").read_text(), re.M), package


def test_ci_installs_exactly_as_the_readme_says():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "--upgrade pip" not in ci and "install -U pip" not in ci
    assert "pip install -q -r requirements.txt" in ci


def test_doctor_reports_every_method_device_dataset_and_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path))
    report = environment_report(check_training=False)
    methods = {line.label: line for line in report.sections["Methods"]}
    assert set(WEIGHTINGS.names()) <= set(methods)
    assert all(methods[name].ok for name in WEIGHTINGS.names())
    devices = " ".join(line.label for line in report.sections["Devices and precision"])
    assert "cpu" in devices and "bfloat16" in devices
    datasets = {line.label: line.value for line in report.sections["Datasets"]}
    assert datasets["shapes"].startswith("available")
    assert datasets["cifar10"].startswith("unavailable:") and str(tmp_path) in datasets["cifar10"]
    assert str(tmp_path) in report.sections["Data folder"][0].value
    assert report.core_ok


def test_doctor_reports_a_missing_solver_and_the_method_it_takes_away(monkeypatch):
    import mtlcore.doctor as doctor

    real = doctor.find_spec
    monkeypatch.setattr(doctor, "find_spec", lambda name: None if name == "quadprog" else real(name))
    # As registration does when quadprog is absent: upgrad is left out of the registry.
    monkeypatch.setattr(WEIGHTINGS, "_entries", {k: v for k, v in WEIGHTINGS._entries.items() if k != "upgrad"})
    lines = {line.label: line for line in doctor.method_lines()}
    assert lines["upgrad"].ok is False and "quadprog" in lines["upgrad"].value
    solvers = {line.label: line for line in doctor.solver_lines()}
    assert solvers["quadprog"].ok is False and "upgrad" in solvers["quadprog"].value


def test_doctor_command_trains_a_tiny_model_and_exits_zero(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mtlcore", "doctor", "--json"], capture_output=True, text=True,
                            env={"MTL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["core_ok"] is True
    assert report["sections"]["Core"][0]["ok"] is True


def test_doctor_says_when_run_folders_sit_next_to_a_store_that_does_not_know_them(tmp_path, monkeypatch):
    from mtlcore.runs import RunStore

    monkeypatch.setenv("MTL_HOME", str(tmp_path))
    RunStore(tmp_path)  # an empty store...
    (tmp_path / "runs" / "abc123").mkdir(parents=True)
    (tmp_path / "runs" / "abc123" / "config.json").write_text("{}")  # ...and a run folder it never heard of
    lines = environment_report(check_training=False).sections["Data folder"]
    store_lines = [line for line in lines if line.label == "store"]
    assert store_lines and store_lines[0].ok is False
    assert "not in the store" in store_lines[0].value and "repair" in store_lines[0].value
