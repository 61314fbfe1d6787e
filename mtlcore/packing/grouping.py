"""Which runs pack: the pack key, the size of a pack, and whether stacking pays on a device.

The one owner of the rule. It is decided once per run, when the run is
queued (``packing_of``, called by the run store's insert), and stored with
it: a worker then claims a lead run and every queued run with the same
stored key in one query, without loading a dataset or building a model
(``RunStore.claim_pack``). ``pack_groups`` applies the same rule to a list
of configs in the foreground (``fit_many``: the command line's studies).

Runs with one key can be trained together (``packing.loop.fit_packed``):
the same dataset and settings except the seed, the tasks, the loss weights,
the dataset's options (the synthetic data's correlation, say, as long as
the splits keep their sizes and the inputs their shape) and the weighting
method, which must only weight losses (a ``LossWeighting`` whose objective
is the plain weighted sum: static, equal, dwa, rlw; not uncertainty, which
learns its weights); no early stopping, no diagnostics, no architecture
penalty, and losses with one output per regression task (``losses.packs``:
not gaussian_nll). The key also holds what makes the members' tensors
stack, known from the dataset's registry entry without building it
(``DatasetInfo.footprint``: samples and input shape) and from the model
built on PyTorch's ``meta`` device (no memory, no time): its parameter
shapes, and whether a member's model is part of the model for every task
(true for hard sharing, single-task heads and MMoE; not for cross-stitch,
whose units are T x T, so there the tasks are part of the key).

Stacking pays (``speed.stacking_pays``) on an accelerator always, and on a
CPU unless the model is convolutional (a stacked, grouped convolution is
slower there than N plain ones): ``Packing.on_cpu`` is asked of the model
once, and the worker answers for its own device (``pays_on``).

A pack holds at most ``MAX_PACKED_RUNS``; more runs with one key are cut
into equal parts (``part_size``: 36 runs train as two packs of 18, not as
24 and then 12). ``MTL_PACKING=0`` turns packing off.

This module imports no torch until a key is computed, so the runner and
the store can import it cheaply.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch

    from ..config import ExperimentConfig

__all__ = ["MAX_PACKED_RUNS", "PACKING_VARIABLE", "Packing", "first_pack", "pack_groups", "pack_key",
           "packing_enabled", "packing_of", "part_size", "pays_on"]

# A pack trains at most this many small runs together. Measured with fit_packed
# on the relatedness study's MLPs (2-core machine, 1 thread): 8 runs 2.2x faster
# than one by one, 16 runs 2.9x, 24 runs 3.0x, 36 runs 2.7x; and everyone
# queued behind a pack waits for all of it.
MAX_PACKED_RUNS = 24

PACKING_VARIABLE = "MTL_PACKING"  # 0 turns packing off: every run trains alone (for comparisons)


def packing_enabled() -> bool:
    """Whether runs are packed together at all (MTL_PACKING=0 turns it off)."""
    return os.environ.get(PACKING_VARIABLE, "1").strip().lower() not in ("0", "off", "false", "no")


@dataclass(frozen=True)
class Packing:
    """How one run packs, as decided when it is queued and stored with it (the runs table's pack columns)."""

    key: str | None  # runs with one key train together; None: this run trains alone
    batch: int  # at most this many runs in one pack (1 when it trains alone)
    on_cpu: bool  # whether stacking pays on a CPU too (not for convolutional models)


def packing_of(config: "ExperimentConfig") -> Packing:
    """How ``config`` packs: its key, the most runs in its pack, whether stacking pays on a CPU.

    Trusts ``config`` (it is validated where it enters: page, submit, command
    line); anything that stops the key from being computed (a dataset no
    longer registered, a model that cannot be built) makes the run train
    alone, where ``fit`` says what is wrong.
    """
    # Seeds and loss weights never change how a run packs: one answer for a study's many seeds.
    text = replace(config, seed=0, dataset=replace(config.dataset, seed=0),
                   loss=replace(config.loss, weights={})).to_json()
    known = _KNOWN.get(text)
    if known is None:
        try:
            known = _key_and_cpu(config)
        except (ValueError, KeyError, TypeError, RuntimeError):
            known = (None, False)
        if len(_KNOWN) >= 4096:
            _KNOWN.clear()
        _KNOWN[text] = known
    key, on_cpu = known
    return Packing(key, MAX_PACKED_RUNS if key is not None else 1, on_cpu)


# (key, on_cpu) by config JSON less seeds and loss weights, per process: a study asks about
# its waiting members at every step (about 20 ms each to build their models on meta).
_KNOWN: dict[str, tuple[str | None, bool]] = {}


def pack_key(config: "ExperimentConfig") -> str | None:
    """Runs with the same key can be trained together; None: this run trains alone (see the module)."""
    return packing_of(config).key


def pays_on(device: "torch.device | str", on_cpu: bool) -> bool:
    """Whether stacking pays on ``device``: on an accelerator always, on a CPU when ``on_cpu``.

    ``on_cpu`` is ``speed.stacking_pays`` asked of the run's model on a CPU
    when the run was queued (``Packing.on_cpu``, stored with it), so a
    worker answers for its own device without building the model.
    """
    import torch

    return torch.device(device).type != "cpu" or on_cpu


def part_size(count: int, limit: int) -> int:
    """How many of ``count`` runs with one key go in the first pack: equal parts of at most ``limit``."""
    parts = -(-count // max(1, limit))
    return -(-count // max(1, parts))


def pack_groups(configs: Sequence["ExperimentConfig"], device: "torch.device | str | None" = None,
                force: bool = False) -> list[list[int]]:
    """Indices of ``configs`` in groups to train together (``fit_packed``); singletons train alone.

    Groups are the configs with one key where stacking pays on ``device``
    (None: each config's own), in the order of first appearance. ``force``:
    pack even where stacking would not pay (tests compare packed and lone
    results). No limit on a group's size: ``fit_many`` trains what it is given.
    """
    plans = [packing_of(c) for c in configs]
    groups: dict[str, list[int]] = {}
    result: list[list[int]] = []
    for i, plan in enumerate(plans):
        if plan.key is None:
            result.append([i])
        else:
            groups.setdefault(plan.key, []).append(i)
    for members in groups.values():
        first = members[0]
        if len(members) > 1 and (force or pays_on(_device_of(configs[first], device), plans[first].on_cpu)):
            result.append(members)
        else:
            result += [[i] for i in members]
    return sorted(result, key=lambda g: g[0])


def first_pack(configs: Sequence["ExperimentConfig"], device: "torch.device | str | None" = None,
               limit: int | None = None) -> list[int]:
    """Indices of ``configs`` that train together with ``configs[0]`` as one pack, 0 first; ``[0]`` alone.

    What a worker will claim with ``configs[0]`` when they are queued (a
    study queues them as one batch): the configs with its key, where
    stacking pays on ``device`` (None: the config's own), cut into equal
    parts of at most ``limit`` (None: the key's own batch).
    """
    lead = packing_of(configs[0])
    try:
        pays = lead.key is not None and pays_on(_device_of(configs[0], device), lead.on_cpu)
    except ValueError:  # a device this machine lacks: fit says so, for the run alone
        pays = False
    if not pays:
        return [0]
    same = [i for i, config in enumerate(configs) if i == 0 or packing_of(config).key == lead.key]
    return same[:part_size(len(same), limit or lead.batch)]


def _device_of(config: "ExperimentConfig", device: "torch.device | str | None") -> "torch.device":
    from ..devices import resolve_device

    import torch

    return resolve_device(config.device) if device is None else torch.device(device)


def _key_and_cpu(config: "ExperimentConfig") -> tuple[str | None, bool]:
    """The pack key of ``config`` (None: it trains alone) and whether stacking its model pays on a CPU."""
    import torch

    from ..data import dataset_info, resolve_options
    from ..losses import make_loss, packs as loss_packs
    from ..models import ARCHITECTURES, MultiTaskModel
    from ..speed import stacking_pays
    from ..weighting import WEIGHTINGS
    from ..weighting.base import LossWeighting

    method = WEIGHTINGS.get(config.weighting.method)
    arch = ARCHITECTURES.get(config.model.arch)
    info = dataset_info(config.dataset.name)
    if (config.train.patience or config.train.diagnostics_every or not issubclass(method, LossWeighting)
            or method.objective is not LossWeighting.objective or method.wants_losses_after_step
            or arch.penalty is not MultiTaskModel.penalty
            or not loss_packs(config.loss)  # e.g. gaussian_nll: two outputs per regression task
            or config.train.label_fraction < 1  # masked losses: fit's own step
            or info.footprint is None  # sizes unknown until built
            # e.g. reconstruction: a whole image per example, which packed training does not stack
            or not all(make_loss(info.task(t), config.loss).packs for t in config.tasks)):
        return None, False
    samples, input_shape = info.footprint(**resolve_options(info.name, config.dataset.options))
    every = tuple(t.name for t in info.tasks if make_loss(t, config.loss).packs)
    template_model = _model_on_meta(config, every, input_shape)
    template = _shapes(template_model)
    nests = all(template.get(name) == shape for name, shape in _shapes(_model_on_meta(config, config.tasks,
                                                                                       input_shape)).items())
    read = _without_unused_settings(config, arch)
    neutral = replace(read, seed=0, tasks=(), loss=replace(read.loss, weights={}),
                      # a bagging member's own bootstrap rows are only its batches' order (epoch_order)
                      train=replace(read.train, bootstrap=False),
                      dataset=replace(read.dataset, seed=0, options={}),
                      weighting=replace(read.weighting, method="", options={}),
                      model=replace(read.model, arch=""))
    what = {
        "config": neutral.to_json(),
        # The architecture counts by its forward pass: single is hard sharing with
        # one head (the same forward), so baselines pack with the multi-task model.
        "forward": arch.forward.__qualname__,
        "data": [samples, list(input_shape)],  # stacked splits need the same sizes and input shape
        "template": sorted(template.items()),  # the model for every task: one template for all members
        "tasks": None if nests else list(config.tasks),  # cross-stitch: members with the same tasks only
    }
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]
    return key, stacking_pays(torch.device("cpu"), template_model)


def _without_unused_settings(config: "ExperimentConfig", arch: type) -> "ExperimentConfig":
    """``config`` with every architecture-only setting that ``arch`` does not read back at its default.

    Each architecture names the settings only it reads (``MultiTaskModel.uses``:
    MMoE's experts, soft sharing's penalty); another architecture ignores
    them, so they must not keep its runs apart (a study that matches
    parameter budgets sets ``model.num_experts`` on its hard-sharing model,
    which then still packs with its single-task baselines).
    """
    from ..models import ARCHITECTURES

    unused = {key for name in ARCHITECTURES.names() for key in ARCHITECTURES.get(name).uses} - set(arch.uses)
    for key in sorted(unused):
        section, name = key.split(".", 1)
        part = getattr(config, section)
        config = replace(config, **{section: replace(part, **{name: getattr(type(part)(), name)})})
    return config


def _model_on_meta(config: "ExperimentConfig", tasks: tuple[str, ...], input_shape: Sequence[int]) -> "torch.nn.Module":
    """``config``'s model for ``tasks``, built on PyTorch's meta device: shapes only, no memory, no time."""
    import torch

    from ..data import dataset_info
    from ..models import build_model

    info = dataset_info(config.dataset.name)
    with torch.device("meta"):
        return build_model(replace(config, tasks=tasks), [info.task(t) for t in tasks], info.input_kind,
                           tuple(input_shape))


def _shapes(model: "torch.nn.Module") -> dict[str, list[int]]:
    """Names and shapes of ``model``'s parameters and buffers."""
    return {name: list(value.shape) for name, value in model.state_dict().items()}
