"""How much memory a run will need, estimated before it starts, and how much this machine allows.

``dataset.n_samples=1000000`` with ``dataset.dim=10000`` passes every range
check and then needs about 112 GiB while the data is built: the worker
swaps or is killed, and on a shared classroom server it takes everyone's runs
with it. So ``validate`` asks ``check_memory`` first, which refuses a config
whose estimate is above the budget, in one sentence with the estimate.

The estimate is deliberately simple and errs on the large side:

- **data**: ``samples x values per input x 12 bytes``. Building a dataset
  holds its inputs at higher precision (numpy float64 draws, or rendered
  pictures) beside the float32 tensor and the three split copies; measured on
  ``synthetic`` (100000 x 1000) and ``shapes`` (20000 x 3 x 64 x 64) the peak
  is 12.1 bytes a value in both. The dataset says how many samples and what
  shape without building (``DatasetInfo.footprint``).
- **model**: the model is built on PyTorch's ``meta`` device (shapes, no
  memory) to count its parameters exactly; each needs 4 bytes for itself,
  its gradient and two optimiser moments (Adam's; SGD needs fewer), plus one
  gradient per task for methods that combine per-task gradients. One forward
  pass of a single meta sample sizes the activations, kept for the backward
  pass and matched by their gradients, for a whole batch.

The budget is half of the machine's memory (the smaller of its physical RAM
and its container's limit): the app, other workers and the operating system
need the rest. ``MTL_MEMORY_BUDGET_GB`` sets it explicitly.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the config module does not import torch; neither does importing this one
    from .config import ExperimentConfig

__all__ = ["Estimate", "estimate", "machine_memory", "memory_budget", "check_memory", "BUDGET_VARIABLE"]

BUDGET_VARIABLE = "MTL_MEMORY_BUDGET_GB"
BUDGET_FRACTION = 0.5
BYTES_PER_INPUT_VALUE = 12  # measured peak while a dataset is built (see above)
FLOAT_BYTES = 4
PARAMETER_COPIES = 4  # weights, gradients, two optimiser moments
CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")  # cgroup v2: "max" or a number of bytes
GIB = 2**30


@dataclass(frozen=True)
class Estimate:
    """Bytes a run needs: its data (while built) and its model (while trained)."""

    data: int
    model: int

    @property
    def total(self) -> int:
        return self.data + self.model


def machine_memory() -> int:
    """This machine's memory in bytes: physical RAM, or the container's limit when smaller."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume a small laptop
        total = 8 * GIB
    try:
        limit = CGROUP_LIMIT.read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def memory_budget() -> int:
    """The most memory one run may plan to use, in bytes."""
    configured = os.environ.get(BUDGET_VARIABLE, "").strip()
    if configured:
        try:
            value = float(configured)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return int(value * GIB)
    return int(machine_memory() * BUDGET_FRACTION)


def _model_bytes(config: "ExperimentConfig", info, input_shape: tuple[int, ...]) -> int:
    """Parameters (with gradients and optimiser state) and one batch's activations."""
    import torch

    from .models import build_model
    from .weighting import WEIGHTINGS

    tasks = [t for t in info.tasks if t.name in config.tasks]
    try:
        with torch.device("meta"):
            model = build_model(config, tasks, info.input_kind, input_shape)
    except Exception:  # a model that cannot be built says why when the run builds it; size the data alone
        return 0
    params = sum(p.numel() for p in model.parameters())
    method = WEIGHTINGS.get(config.weighting.method)
    copies = PARAMETER_COPIES + (len(tasks) if getattr(method, "needs_task_gradients", False) else 0)

    outputs = [0]

    def count(_module, _inputs, output):
        tensors = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else [output]
        outputs[0] += sum(t.numel() for t in tensors if isinstance(t, torch.Tensor))

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty((1, *input_shape), device="meta"))
    except Exception:  # a model meta tensors cannot run through: count its parameters only
        outputs[0] = 0
    finally:
        for hook in hooks:
            hook.remove()
    activations = outputs[0] * config.train.batch_size * 2  # kept for backward, and their gradients
    return (params * copies + activations) * FLOAT_BYTES


def estimate(config: "ExperimentConfig") -> Estimate | None:
    """The memory ``config`` needs; None when its dataset does not say its size.

    Raises ValueError when the dataset's options are out of range (the
    dataset's own sentence).
    """
    from .data import DATASETS

    # The registry entry's identity is part of the key: a re-imported dataset is a new entry.
    return _estimate_of(config.to_json(), id(DATASETS.get(config.dataset.name)))


@functools.lru_cache(maxsize=256)  # pages validate the same config on every rerun
def _estimate_of(config_json: str, _entry: int) -> Estimate | None:
    from .config import ExperimentConfig
    from .data import DATASETS, resolve_options

    config = ExperimentConfig.from_json(config_json)

    info = DATASETS.get(config.dataset.name)
    if info.footprint is None:
        return None
    samples, input_shape = info.footprint(**resolve_options(config.dataset.name, config.dataset.options))
    # train.max_samples cuts the training split only after the build, which holds every sample.
    data = samples * math.prod(input_shape) * BYTES_PER_INPUT_VALUE
    return Estimate(data=data, model=_model_bytes(config, info, tuple(input_shape)))


def _size_options(config: "ExperimentConfig") -> list[str]:
    """The dataset options set in ``config`` that make its data larger than their defaults would."""
    from .data import DATASETS, resolve_options

    info = DATASETS.get(config.dataset.name)
    options = resolve_options(config.dataset.name, config.dataset.options)

    def values(opts):
        samples, shape = info.footprint(**opts)
        return samples * math.prod(shape)

    now = values(options)
    found = []
    for key, default in info.options.items():
        try:
            if options[key] != default and values({**options, key: default}) < now:
                found.append(key)
        except ValueError:
            continue
    return found


def _gb(n: int) -> str:
    return f"{n / GIB:.1f} GB" if n >= GIB / 10 else f"{n / 2**20:.0f} MB"


def check_memory(config: "ExperimentConfig") -> str | None:
    """None when ``config`` fits this machine's budget, else one sentence with the estimate."""
    needed = estimate(config)
    budget = memory_budget()
    if needed is None or needed.total <= budget:
        return None
    sizes = ", ".join(f"dataset.{k}" for k in _size_options(config))
    if os.environ.get(BUDGET_VARIABLE, "").strip():
        allowed = f"the {_gb(budget)} set by {BUDGET_VARIABLE}"
    else:
        allowed = f"the {_gb(budget)} a run may use on this machine (half of its {_gb(machine_memory())})"
    return (
        f"This run needs about {_gb(needed.total)} of memory (data {_gb(needed.data)}, model "
        f"{_gb(needed.model)}), more than {allowed}; use fewer or smaller samples"
        f"{f' ({sizes})' if sizes else ''} or a smaller model (model.width, train.batch_size)."
    )
