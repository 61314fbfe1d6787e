"""CelebA: faces with 40 yes/no attributes; you choose which are the tasks.

Liu, Luo, Wang & Tang, "Deep Learning Face Attributes in the Wild" (ICCV
2015): about 200 000 aligned and cropped celebrity faces, each annotated with
40 binary attributes such as ``Smiling``, ``Male``, ``Eyeglasses`` and
``Young``. Every attribute is a task (classes ``no`` / ``yes``); a config
names the ones to train directly, e.g. ``tasks=Smiling,Male,Eyeglasses,Young``,
and ``config.validate`` checks the names against the 40 below. Multi-task
learning on CelebA attributes is a classic benchmark (Sener & Koltun 2018
train all 40 at once); some attributes help each other (``Heavy_Makeup`` and
``Wearing_Lipstick``) while others compete for the trunk.

The files are read with ``torchvision.datasets.CelebA`` from
``MTL_HOME/torchvision/celeba`` (never downloaded unless asked), using the
official train / valid / test partition. For speed only ``max_images`` faces
are used (80/10/10 over the partitions, chosen with the seed), each resized
so that its shorter side is ``image_size`` pixels and centre-cropped to a
square; the built tensors are cached in the data folder.

Pixels are scaled to [0, 1] and normalised as ``(x - 0.5) / 0.5``;
``preprocess`` does exactly the same to a user's photo.
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
from .tvsets import clear_errors, guarded_download, missing_sentence, picture_transform

FOLDER = "celeba"  # torchvision's CelebA.base_folder
IMAGES = "img_align_celeba"
# The annotation files torchvision's CelebA reads (its file_list without the
# zip; a test checks that they agree). It refuses to start without any one.
TEXT_FILES = ("list_attr_celeba.txt", "identity_CelebA.txt", "list_bbox_celeba.txt",
              "list_landmarks_align_celeba.txt", "list_eval_partition.txt")
# The 40 attributes, in the column order of list_attr_celeba.txt.
ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
DEFAULT_TASKS = ("Smiling", "Male", "Eyeglasses", "Young")
TASKS = tuple(
    TaskSpec(name, "classification", 2, ("no", "yes"),
             description=f"Whether the face is annotated '{name.replace('_', ' ')}'.")
    for name in ATTRIBUTES
)
# Share of max_images drawn from each official partition.
PARTITIONS = {"train": ("train", 0.8), "val": ("valid", 0.1), "test": ("test", 0.1)}


def tv_class():
    """torchvision's CelebA class; a function so that tests can give a subclass
    whose checksums match their tiny files."""
    import torchvision.datasets

    return torchvision.datasets.CelebA


def folder():
    return torchvision_root() / FOLDER


def unavailable() -> str | None:
    """None when the five lists and the image folder are there, else what to place where."""
    if all((folder() / n).is_file() for n in TEXT_FILES) and (folder() / IMAGES).is_dir():
        return None
    return missing_sentence(
        "CelebA", (*TEXT_FILES, f"the folder {IMAGES}/ (unpacked from {IMAGES}.zip)"), folder(), "celeba",
        note="; downloading needs the gdown package and often hits Google Drive's daily quota",
    )


def check_options(max_images: int, image_size: int) -> None:
    if not 20 <= max_images <= 202_599:
        raise ValueError(f"celeba: max_images must be between 20 and 202599, got {max_images}.")
    if not 16 <= image_size <= 64:
        raise ValueError(f"celeba: image_size must be between 16 and 64 pixels, got {image_size}.")


def read_partition(split: str, image_size: int, seed: int, count: int) -> Split:
    """``count`` faces (seeded choice) of one official partition, with all 40 attributes.

    torchvision checks the MD5 sum of each annotation file: a truncated list
    is refused rather than mislabelling faces.
    """
    with clear_errors("CelebA", folder()):
        faces = tv_class()(str(torchvision_root()), split=split, target_type="attr",
                           transform=picture_transform(image_size), download=False)
        names = tuple(n for n in faces.attr_names if n)  # a trailing space in the header makes an empty name
        if names != ATTRIBUTES:
            raise ValueError(f"list_attr_celeba.txt names other attributes ({', '.join(names[:3])}, ...)")
        rng = np.random.RandomState(seed)
        chosen = np.sort(rng.permutation(len(faces))[:count])
        if len(chosen) == 0:
            raise ValueError(f"the {split} partition of list_eval_partition.txt is empty")
        x = torch.stack([faces[int(i)][0] for i in chosen]).clamp_(-1.0, 1.0)
    attr = faces.attr[torch.from_numpy(chosen)].long()
    return Split(x, {name: attr[:, j].contiguous() for j, name in enumerate(ATTRIBUTES)})


def assemble(seed: int, max_images: int, image_size: int) -> MTLData:
    splits = {
        ours: read_partition(theirs, image_size, seed + k, max(1, int(round(max_images * share))))
        for k, (ours, (theirs, share)) in enumerate(PARTITIONS.items())
    }
    tasks = {t.name: t for t in TASKS}
    return MTLData("celeba", tasks, splits["train"], splits["val"], splits["test"], "image", {})


def build(seed: int = 0, max_images: int = 5000, image_size: int = 32) -> MTLData:
    """CelebA with ``max_images`` faces of ``image_size`` pixels, from the cache when built before."""
    check_options(max_images, image_size)
    problem = unavailable()
    if problem:
        raise ValueError(problem)
    # The image folder's own modification time stands for its 200 000 files:
    # listing them all for every load would be slow.
    key = {"seed": seed, "max_images": max_images, "image_size": image_size,
           "files": fingerprint([*(folder() / n for n in TEXT_FILES), folder() / IMAGES])}
    return cached_build("celeba", key, lambda: assemble(seed, max_images, image_size))


def download(progress: Progress | None = None) -> None:
    """torchvision's own CelebA download (from Google Drive, with gdown, about 1.4 GB)."""
    def fetch(report: Progress) -> None:
        report(0.0, "downloading CelebA from Google Drive (about 1.4 GB); this takes a while")
        tv_class()(str(torchvision_root()), split="train", download=True)

    guarded_download("CelebA", unavailable, fetch, progress)


def footprint(max_images: int = 5000, image_size: int = 32) -> tuple[int, tuple[int, ...]]:
    """(samples, input shape) that ``build`` would make; checks the options first."""
    check_options(max_images, image_size)
    return max_images, (3, image_size, image_size)


def preprocess(img: Image.Image, image_size: int = 32, **_options) -> torch.Tensor:
    """A user's photo of a face as one input (3 x S x S in [-1, 1]), as the training faces."""
    check_options(5000, image_size)
    return picture_transform(image_size)(to_rgb_on_white(img)).clamp(-1.0, 1.0)


INFO = DATASETS.register("celeba")(
    DatasetInfo(
        name="celeba",
        description=(
            "CelebA faces (Liu et al. 2015) with 40 yes/no attributes; choose the attributes to "
            "learn as tasks, e.g. Smiling, Male, Eyeglasses, Young."
        ),
        tasks=TASKS,
        build=build,
        footprint=footprint,
        options={"max_images": 5000, "image_size": 32},
        option_help={
            "max_images": "Number of faces used (80/10/10 from the official train/valid/test partitions).",
            "image_size": "Width and height of each face in pixels (16 to 64).",
        },
        input_kind="image",
        preprocess=preprocess,
        image_hint="A photo of one face, looking at the camera, cropped to head and shoulders.",
        source="torchvision",
        available=unavailable,
        download=download,
        default_tasks=DEFAULT_TASKS,
    )
)
