"""CIFAR-10 with four tasks per photo: the class and three coarser questions.

The 60 000 32 x 32 colour photos of Krizhevsky (2009), "Learning Multiple
Layers of Features from Tiny Images", read with ``torchvision.datasets.CIFAR10``
from ``MTL_HOME/torchvision/cifar-10-batches-py`` (never downloaded unless
asked). Tasks on the same photo:

- ``class``: which of the 10 classes;
- ``animal``: animal (bird, cat, deer, dog, frog, horse) or vehicle
  (airplane, automobile, ship, truck) -- a coarse grouping of ``class``;
- ``cat``, ``dog``: is it a cat? is it a dog? -- binary heads, and the
  classic hard pair of CIFAR-10, each with nine times more "no" than "yes".

Every auxiliary task is a function of ``class``, so a model that knows the
class knows them all: a clean case of related tasks. A binary head alone,
though, sees far fewer examples of what it is looking for, which is where
sharing a trunk with the 10-class task can help.

Training and validation photos come from the five training batches, test
photos from the test batch only. Pixels are scaled to [0, 1] and normalised
as ``(x - 0.5) / 0.5``; ``preprocess`` does the same to a user's photo after
resizing its shorter side to 32 and cropping the centre.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..images import to_rgb_on_white
from .base import DATASETS, DatasetInfo, MTLData, Split, TaskSpec
from .cache import cached_build, fingerprint
from .download import Progress
from .folders import torchvision_root
from .tvsets import clear_errors, guarded_download, missing_sentence, picture_transform, pool_indices, to_inputs

SIZE = 32
FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder
# The files torchvision's CIFAR10 reads (its train_list, test_list and meta;
# a test checks that they agree), and its label names in label order.
FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
         "batches.meta")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
VEHICLES = ("airplane", "automobile", "ship", "truck")

TASKS = (
    TaskSpec("class", "classification", 10, CLASSES, description="Which of the ten classes the photo shows."),
    TaskSpec("animal", "classification", 2, ("vehicle", "animal"),
             description="Whether the photo shows an animal or a vehicle."),
    TaskSpec("cat", "classification", 2, ("no", "yes"), description="Whether the photo shows a cat."),
    TaskSpec("dog", "classification", 2, ("no", "yes"), description="Whether the photo shows a dog."),
)


def tv_class():
    """torchvision's CIFAR10 class; a function so that tests can give a subclass
    whose checksums match their tiny files."""
    import torchvision.datasets

    return torchvision.datasets.CIFAR10


def folder():
    return torchvision_root() / FOLDER


def unavailable() -> str | None:
    """None when the seven files are there, else what to place where."""
    if all((folder() / name).is_file() for name in FILES):
        return None
    return missing_sentence(
        "CIFAR-10", FILES, folder(), "cifar10",
        where_note=f" (unpacking cifar-10-python.tar.gz in {torchvision_root()} puts them there)",
    )


def check_options(n_samples: int) -> None:
    if not 20 <= n_samples <= 60_000:
        raise ValueError(f"cifar10: n_samples must be between 20 and 60000, got {n_samples}.")


def class_targets(labels: np.ndarray) -> dict[str, torch.Tensor]:
    """Every task's target from the class labels."""
    label = torch.from_numpy(labels.astype(np.int64))
    vehicle = torch.tensor([CLASSES.index(c) for c in VEHICLES])
    return {
        "class": label,
        "animal": (~torch.isin(label, vehicle)).long(),
        "cat": (label == CLASSES.index("cat")).long(),
        "dog": (label == CLASSES.index("dog")).long(),
    }


def read_files() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(photos uint8 N x 32 x 32 x 3, labels) of the training batches and of the test batch.

    torchvision checks each file's MD5 sum against the official one: a
    truncated or altered file is refused rather than silently trained on.
    """
    with clear_errors("CIFAR-10", folder()):
        parts = [tv_class()(str(torchvision_root()), train=train, download=False) for train in (True, False)]
    if tuple(parts[0].classes) != CLASSES:
        raise ValueError(f"The CIFAR-10 files in {folder()} name other classes ({parts[0].classes}); "
                         "place the original CIFAR-10 python batches there.")
    return tuple((np.asarray(p.data), np.asarray(p.targets)) for p in parts)  # type: ignore[return-value]


def assemble(seed: int, n_samples: int) -> MTLData:
    train_files, test_files = read_files()
    plan = pool_indices(seed, n_samples, len(train_files[1]), len(test_files[1]))
    splits = {}
    for split, (pool, size) in plan.items():
        photos, labels = test_files if split == "test" else train_files
        chosen = np.sort(pool[:size])  # sorted: reading in file order is kinder to the memory
        x = to_inputs(torch.from_numpy(photos[chosen]).permute(0, 3, 1, 2))
        splits[split] = Split(x, class_targets(labels[chosen]))
    tasks = {t.name: t for t in TASKS}
    return MTLData("cifar10", tasks, splits["train"], splits["val"], splits["test"], "image", {})


def build(seed: int = 0, n_samples: int = 10_000) -> MTLData:
    """CIFAR-10 with ``n_samples`` photos in all (seeded choice), from the cache when built before."""
    check_options(n_samples)
    problem = unavailable()
    if problem:
        raise ValueError(problem)
    key = {"seed": seed, "n_samples": n_samples, "files": fingerprint(folder() / n for n in FILES)}
    return cached_build("cifar10", key, lambda: assemble(seed, n_samples))


def download(progress: Progress | None = None) -> None:
    """Fetch cifar-10-python.tar.gz (163 MB), then let torchvision verify and unpack it."""
    def fetch(report: Progress) -> None:
        from .download import fetch_file

        cls = tv_class()
        fetch_file(cls.url, torchvision_root() / cls.filename, cls.tgz_md5, report, 0.0, 0.95)
        report(0.95, "unpacking")
        cls(str(torchvision_root()), train=True, download=True)

    guarded_download("CIFAR-10", unavailable, fetch, progress)


def footprint(n_samples: int = 10_000) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    check_options(n_samples)
    return n_samples, (3, SIZE, SIZE)


def preprocess(img: Image.Image, **_options) -> torch.Tensor:
    """A user's photo as one input (3 x 32 x 32 in [-1, 1]): shorter side to 32, centre crop."""
    return picture_transform(SIZE)(to_rgb_on_white(img)).clamp(-1.0, 1.0)


INFO = DATASETS.register("cifar10")(
    DatasetInfo(
        name="cifar10",
        description=(
            "CIFAR-10 photos (Krizhevsky 2009): the class, animal or vehicle, and is it a cat, "
            "is it a dog -- auxiliary tasks that are coarser views of the class."
        ),
        tasks=TASKS,
        build=build,
        footprint=footprint,
        options={"n_samples": 10_000},
        option_help={"n_samples": "Number of photos used, split 70/15/15 into train, validation and test (up to 60000)."},
        input_kind="image",
        preprocess=preprocess,
        image_hint="A photo of one animal or vehicle, centred and filling most of the picture.",
        source="torchvision",
        available=unavailable,
        download=download,
    )
)
