"""What every dataset provides: tasks, three splits of tensors, and metadata.

A dataset is a function registered in ``DATASETS`` that takes keyword options
and a seed and returns an ``MTLData``. Inputs are one tensor per split (images
as float32 N x C x H x W, vectors as N x D) and targets one tensor per task, so
the whole of a small dataset can live on the device and a training step is
just indexing -- no per-sample Python in the hot loop.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch

from ..registry import Registry

TaskKind = Literal["classification", "regression", "reconstruction"]

#: The auxiliary task every image dataset offers: rebuild the input (an autoencoder on the shared trunk).
RECONSTRUCTION = "reconstruction"


@dataclass(frozen=True)
class TaskSpec:
    """One task: what it predicts and how it is scored.

    Classification tasks are scored by ``accuracy`` (higher is better);
    regression tasks by ``mae`` in the target's original units (lower is
    better), with ``r2`` reported beside it. A ``reconstruction`` task (the
    input itself is the target; see ``reconstruction_task``) is scored by
    ``mse`` per pixel in the normalised input space (lower is better) and
    needs no labels.
    """

    name: str
    kind: TaskKind
    num_classes: int = 0  # classification only
    classes: tuple[str, ...] = ()  # class names, for display
    unit: str = ""  # regression only, e.g. "px"
    description: str = ""
    # reconstruction only: the shape of one input (C, H, W); known once the data is built, so it
    # does not take part in comparing two specs of the same task.
    shape: tuple[int, ...] = field(default=(), compare=False)

    @property
    def output_size(self) -> int:
        if self.kind == "reconstruction":
            return math.prod(self.shape)
        return self.num_classes if self.kind == "classification" else 1

    @property
    def metric(self) -> str:
        return {"classification": "accuracy", "reconstruction": "mse"}.get(self.kind, "mae")

    @property
    def needs_labels(self) -> bool:
        """False for a task whose target is the input itself: ``train.label_fraction`` leaves it every sample."""
        return self.kind != "reconstruction"

    @property
    def higher_is_better(self) -> bool:
        return self.kind == "classification"

    @property
    def default_loss(self) -> str:
        return "cross_entropy" if self.kind == "classification" else "mse"  # reconstruction: mse per pixel

    @property
    def chance(self) -> float | None:
        """Accuracy of guessing uniformly (classification), else None."""
        return 1.0 / self.num_classes if self.kind == "classification" else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "classes": list(self.classes),
            "unit": self.unit,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "description": self.description,
            "shape": list(self.shape),
        }


@dataclass
class Split:
    """Inputs and per-task targets of one split (train, val or test).

    Classification targets are int64 class indices; regression targets are
    float32 and *standardised* with the training split's mean and std (see
    ``MTLData.target_stats``) so that all tasks' losses start on one scale.
    """

    x: torch.Tensor
    y: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> "Split":
        x = self.x.to(device)
        # A reconstruction target *is* the input: move it once, not twice.
        return Split(x, {t: x if v is self.x else v.to(device) for t, v in self.y.items()})

    def subset(self, n: int) -> "Split":
        x = self.x[:n]
        return Split(x, {t: x if v is self.x else v[:n] for t, v in self.y.items()})

    def select_tasks(self, tasks: list[str] | tuple[str, ...]) -> "Split":
        return Split(self.x, {t: self.y[t] for t in tasks})


@dataclass
class MTLData:
    """A loaded dataset: its tasks, its splits and how to read its inputs."""

    name: str
    tasks: dict[str, TaskSpec]
    train: Split
    val: Split
    test: Split
    input_kind: Literal["image", "vector"]
    # (mean, std) of each regression task on the training split; predictions
    # are multiplied back by std and shifted by mean to report original units.
    target_stats: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: everything known about a dataset without building it."""

    name: str
    description: str
    tasks: tuple[TaskSpec, ...]
    build: Callable[..., MTLData]  # build(seed=..., **options) -> MTLData
    options: dict[str, Any]  # option name -> default value
    option_help: dict[str, str] = field(default_factory=dict)
    input_kind: Literal["image", "vector"] = "image"
    # preprocess(PIL.Image) -> tensor shaped like one input; None: no images.
    preprocess: Callable[..., torch.Tensor] | None = None
    # Presentation hints for a user's image: what the dataset expects to see.
    image_hint: str = ""
    # Where the data comes from: "embedded" (generated or shipped, always
    # there), "torchvision" (files in the data folder) or "imported" (the
    # user's own data, imported into the data folder).
    source: str = "embedded"
    # available() -> None when the dataset can be loaded, else one sentence
    # saying which files to place in which folder. None: always available.
    available: Callable[[], str | None] | None = None
    # download(progress=None) fetches the files into the data folder;
    # progress(fraction, message) is called as it goes. None: no download.
    download: Callable[..., None] | None = None
    # The tasks a page preselects when there are many to choose from (CelebA
    # has 40 attributes); empty means all of them.
    default_tasks: tuple[str, ...] = ()
    # footprint(**options) -> (number of samples, shape of one input): what
    # ``build`` would hold, known without building, so that a config's memory
    # is checked before training (mtlcore/budget.py). It raises ValueError
    # for an option out of range. None: not known.
    footprint: Callable[..., tuple[int, tuple[int, ...]]] | None = None

    def __post_init__(self) -> None:
        # Every image dataset also offers the reconstruction task (it needs no labels). A page
        # preselects the dataset's own tasks, not the auxiliary one.
        if self.input_kind == "image" and all(t.name != RECONSTRUCTION for t in self.tasks):
            if not self.default_tasks:
                object.__setattr__(self, "default_tasks", tuple(t.name for t in self.tasks))
            object.__setattr__(self, "tasks", (*self.tasks, reconstruction_task()))
            object.__setattr__(self, "build", _adding_reconstruction(self.build))

    def unavailable_reason(self) -> str | None:
        """None when the dataset can be loaded now, else why not and what to do."""
        return self.available() if self.available is not None else None

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        valid = ", ".join(t.name for t in self.tasks)
        raise KeyError(f"Dataset {self.name!r} has no task {name!r}; its tasks are: {valid}.")


class DatasetRegistry(Registry[DatasetInfo]):
    """The dataset registry, which also knows datasets added while running.

    A dataset a user imports into the data folder is registered in the
    process that imported it; another process (a background worker, a second
    app) learns of it when a name it does not know is looked up: the
    registry then asks its *finders* (functions ``name -> DatasetInfo | None``,
    see ``own.find``) before giving up.
    """

    def __init__(self) -> None:
        super().__init__("dataset")
        self._finders: list[Callable[[str], DatasetInfo | None]] = []

    def add_finder(self, finder: Callable[[str], DatasetInfo | None]) -> None:
        self._finders.append(finder)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (an imported dataset that was deleted); no error if unknown."""
        self._entries.pop(name, None)

    def _find(self, name: object) -> bool:
        if not isinstance(name, str) or name in self._entries:
            return isinstance(name, str)
        for finder in self._finders:
            info = finder(name)
            if info is not None:
                self._entries.setdefault(name, info)
                return True
        return False

    def get(self, name: str) -> DatasetInfo:
        self._find(name)
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        return self._find(name)


DATASETS: DatasetRegistry = DatasetRegistry()


def reconstruction_task(shape: tuple[int, ...] = ()) -> TaskSpec:
    """The auxiliary task of rebuilding the input from the shared features (an autoencoder).

    An unsupervised auxiliary task, as in Le, Patterson & White (NeurIPS
    2018, "Supervised autoencoders: Improving generalization performance
    with unsupervised regularizers"): the trunk must keep what describes the
    whole image, which helps most when labels are few (``train.label_fraction``).
    """
    return TaskSpec(RECONSTRUCTION, "reconstruction", shape=tuple(shape),
                    description="Rebuild the input image from the shared features (needs no labels).")


def _adding_reconstruction(build: Callable[..., MTLData]) -> Callable[..., MTLData]:
    """``build`` whose data also holds the reconstruction task (added after any cache the build uses)."""
    @functools.wraps(build)
    def build_with_reconstruction(*args: Any, **kwargs: Any) -> MTLData:
        return with_reconstruction(build(*args, **kwargs))
    return build_with_reconstruction


def with_reconstruction(data: MTLData) -> MTLData:
    """``data`` with the reconstruction task added (image datasets only): its target is each split's input."""
    if data.input_kind != "image" or RECONSTRUCTION in data.tasks:
        return data
    tasks = {**data.tasks, RECONSTRUCTION: reconstruction_task(data.input_shape)}
    splits = {name: Split(s.x, {**s.y, RECONSTRUCTION: s.x}) for name, s in data.splits().items()}
    return MTLData(data.name, tasks, splits["train"], splits["val"], splits["test"], data.input_kind,
                   dict(data.target_stats))


def standardise_regression(
    splits: dict[str, Split], tasks: dict[str, TaskSpec]
) -> dict[str, tuple[float, float]]:
    """Standardise each regression target in place with train-split statistics.

    Returns ``{task: (mean, std)}``; ``std`` is never zero so that a constant
    target (possible on tiny subsets) does not divide by zero.
    """
    stats: dict[str, tuple[float, float]] = {}
    for name, spec in tasks.items():
        if spec.kind != "regression":
            continue
        train = splits["train"].y[name].float()
        mean = float(train.mean())
        std = float(train.std()) if train.numel() > 1 else 1.0
        std = std if std > 1e-8 else 1.0
        for split in splits.values():
            split.y[name] = ((split.y[name].float() - mean) / std).float()
        stats[name] = (mean, std)
    return stats


def split_indices(n: int, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15):
    """A seeded random permutation cut into train / val / test index tensors."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * val_fraction)))
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]
