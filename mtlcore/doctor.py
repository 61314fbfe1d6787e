"""What this machine gives MTL Lab: versions, devices, precision, solvers, datasets, data folder.

One report, two readers: ``python -m mtlcore doctor`` prints it and the app
shows it (the Data page's "This machine" expander). Every line is a fact
looked up now, never a hard-coded promise:

    >>> report = environment_report()
    >>> report.core_ok, [line.label for line in report.sections["Methods"]][:2]
    (True, ['static', 'equal'])

``core_ok`` is False only when MTL Lab cannot train at all here (torch fails
to run a step); a missing optional solver or dataset is reported, not fatal.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path


@dataclass(frozen=True)
class Line:
    """One fact: a label, its value, and whether it is fine (None: neither good nor bad)."""

    label: str
    value: str
    ok: bool | None = None


@dataclass
class Report:
    sections: dict[str, list[Line]] = field(default_factory=dict)
    core_ok: bool = True

    def as_dict(self) -> dict:
        return {"core_ok": self.core_ok,
                "sections": {name: [vars(line) for line in lines] for name, lines in self.sections.items()}}

    def as_text(self) -> str:
        mark = {True: "ok  ", False: "MISS", None: "    "}
        out = []
        for name, lines in self.sections.items():
            out.append(name)
            width = max((len(line.label) for line in lines), default=0)
            out += [f"  {mark[line.ok]} {line.label:<{width}}  {line.value}" for line in lines]
            out.append("")
        out.append("The core works: MTL Lab can train here." if self.core_ok
                   else "The core does NOT work here: see the lines marked MISS above.")
        return "\n".join(out)


def version_of(package: str) -> str | None:
    """The installed version of ``package`` (a distribution name), or None when absent."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def software_lines() -> list[Line]:
    lines = [Line("python", f"{platform.python_version()} ({sys.executable})", True)]
    for package in ("torch", "torchvision", "torchjd", "numpy", "scikit-learn", "streamlit", "plotly"):
        version = version_of(package)
        lines.append(Line(package, version or "not installed", version is not None))
    return lines


def cpu_name() -> str:
    """The processor's model name where the system says it, else what platform knows."""
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_lines() -> list[Line]:
    import torch

    from .runs.runner import workers_text
    from .speed import BF16_MIN_FLOPS, native_bfloat16

    cores = os.cpu_count() or 1
    lines = [Line("cpu", f"{cpu_name()}, {cores} cores; torch uses {torch.get_num_threads()} threads here"),
             Line("workers", workers_text())]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            lines.append(Line(f"cuda:{index}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB", True))
    else:
        built = torch.version.cuda
        lines.append(Line("cuda", "no usable GPU" + (f" (torch built for CUDA {built})" if built else "")))
    mps = getattr(torch.backends, "mps", None)
    lines.append(Line("mps", "available" if mps and mps.is_available() else "not available"))
    from .devices import resolve_device

    device = resolve_device("auto")
    lines.append(Line("device=auto", f"trains on {device.type}", True))
    native = native_bfloat16(device)
    lines.append(Line(
        "bfloat16", ("native here: train.precision=auto picks bfloat16 for models above "
                     f"{BF16_MIN_FLOPS / 1e9:.1f} GFLOP a batch, float32 below")
        if native else "not native here (emulated, slower): train.precision=auto picks float32"))
    return lines


def method_lines() -> list[Line]:
    """Every method: available, or which missing package keeps it out."""
    from .weighting import WEIGHTINGS
    from .weighting.aggregators import REQUIRED_PACKAGES

    lines = []
    for name in WEIGHTINGS.names():
        needs = [p for p in REQUIRED_PACKAGES.get(name, ()) if p not in ("torchjd", "numpy")]
        lines.append(Line(name, "available" + (f" (uses {', '.join(needs)})" if needs else ""), True))
    for name, packages in REQUIRED_PACKAGES.items():
        if name not in WEIGHTINGS:
            missing = [p for p in packages if find_spec(p) is None]
            lines.append(Line(name, f"MISSING: install {', '.join(missing)} (pip install -r requirements.txt)", False))
    return lines


def solver_lines() -> list[Line]:
    """Each optional solver package and the methods it enables."""
    from .weighting.aggregators import REQUIRED_PACKAGES

    enables: dict[str, list[str]] = {}
    for method, packages in REQUIRED_PACKAGES.items():
        for package in packages:
            if package not in ("torchjd", "numpy"):
                enables.setdefault(package, []).append(method)
    lines = []
    for package, methods in sorted(enables.items()):
        present = find_spec(package) is not None
        version = version_of(package) or ""
        lines.append(Line(package, f"{version or 'present' if present else 'not installed'}; enables "
                          + ", ".join(methods), present))
    ray = version_of("ray")
    lines.append(Line("ray", f"{ray}: background runs can go to a Ray cluster (MTL_RAY_ADDRESS)" if ray
                      else "not installed (optional: pip install -r requirements-ray.txt)"))
    return lines


def dataset_lines() -> list[Line]:
    from .data import list_datasets

    lines = []
    for info in list_datasets():
        reason = info.unavailable_reason()
        tasks = ", ".join(task.name for task in info.tasks)
        lines.append(Line(info.name, f"unavailable: {reason}" if reason else f"available ({tasks})",
                          None if reason else True))
    return lines


def home_lines() -> list[Line]:
    from .runs import RunStore, StoreError, data_folder_size, quick_check
    from .home import home_source, resolve_home

    home = resolve_home()
    source = home_source()
    if not home.exists():
        return [Line("MTL_HOME", f"{home} ({source}); not created yet", None)]
    writable = os.access(home, os.W_OK)
    lines = [Line("MTL_HOME", f"{home} ({source})", writable),
             Line("size", data_folder_size(home).as_text() + ("" if writable else "; NOT writable"), writable)]
    if (home / "mtl.sqlite").exists():
        try:
            findings = quick_check(RunStore(home))
        except StoreError as error:
            lines.append(Line("store", str(error), False))
        else:
            lines += [Line("store", finding.sentence, False) for finding in findings] or [
                Line("store", "every run folder matches its row (python -m mtlcore check looks deeper)", True)]
    return lines


def core_check() -> Line:
    """One training step of a tiny multi-task model on the CPU: can MTL Lab train here at all?"""
    try:
        from .config import ExperimentConfig, set_key
        from .engine import fit

        config = ExperimentConfig()
        for key, value in (("dataset.name", "synthetic"), ("dataset.n_samples", "200"), ("tasks", "task_a,task_b"),
                           ("train.epochs", "1"), ("train.max_samples", "64"), ("device", "cpu")):
            config = set_key(config, key, value)
        result = fit(config)
        return Line("training step", f"a tiny two-task model trained one epoch on the CPU ({result.status})",
                    result.status == "finished")
    except Exception as error:  # noqa: BLE001  (the report must say what broke, not crash)
        return Line("training step", f"failed: {type(error).__name__}: {error}", False)


def environment_report(check_training: bool = True) -> Report:
    """Look everything up now; any section that cannot be looked up says why.

    ``check_training=False`` skips the one-epoch training check (the app does:
    a page never trains in its own thread; the command line runs it).
    """
    report = Report()
    report.sections["Software"] = software_lines()
    core = core_check() if check_training else Line(
        "training step", "not checked here; python -m mtlcore doctor trains a tiny model to check", None)
    report.core_ok = core.ok is not False and all(line.ok for line in report.sections["Software"][:2])
    builders = {"Devices and precision": device_lines, "Methods": method_lines,
                "Optional solvers": solver_lines, "Datasets": dataset_lines, "Data folder": home_lines}
    for name, build in builders.items():
        try:
            report.sections[name] = build()
        except Exception as error:  # noqa: BLE001
            report.sections[name] = [Line("error", f"{type(error).__name__}: {error}", False)]
    report.sections["Core"] = [core]
    return report
