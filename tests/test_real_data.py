"""Datasets read with torchvision: tiny files in the real on-disk formats.

Nothing is downloaded: each test writes a few pictures in exactly the
format torchvision reads (MNIST's idx files, CIFAR-10's pickled batches,
CelebA's text lists and JPEG folder) into a temporary data folder, and the
dataset is loaded through torchvision's own classes with download=False.
"""
import gzip
import hashlib
import pickle
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image

from mtlcore.data import dataset_info, list_datasets, load_dataset, refresh_datasets
from mtlcore.data import celeba, cifar10, multimnist
from mtlcore.data.download import DownloadError

TORCHVISION_SETS = ["multimnist", "multifashion", "cifar10", "celeba"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty data folder, and no tensors left from another test's folder."""
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "lab"))
    refresh_datasets()
    yield tmp_path / "lab"
    refresh_datasets()


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def unpixel(x):
    """An input value in [-1, 1] back to the 0..255 level it was made from."""
    return torch.round((x * 0.5 + 0.5) * 255).long()


# ----- MNIST and Fashion-MNIST ----------------------------------------------------------

def write_idx(path, array, compress=False):
    """The idx format: zero, zero, type 0x08 (uint8), number of dimensions,
    then each dimension as a big-endian int32, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def write_mnist(home, folder, n_train=30, n_test=12, compress=False):
    """Pictures whose every pixel is 20 * (label + 1): the label can be read
    back from any pixel that only one item covers."""
    raw = home / "torchvision" / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.broadcast_to((20 * (labels + 1))[:, None, None], (n, 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)


def test_multimnist_puts_the_left_label_top_left_and_the_right_label_bottom_right(home):
    write_mnist(home, "MNIST")
    assert dataset_info("multimnist").unavailable_reason() is None
    # Full canvas, no shift: the top-left corner pixel belongs to the left item
    # only, the bottom-right corner pixel to the right item only.
    data = load_dataset("multimnist", n_samples=60, image_size=36, max_shift=0)
    assert data.input_shape == (1, 36, 36)
    for split in data.splits().values():
        assert split.x.min() >= -1 and split.x.max() <= 1
        assert torch.equal(unpixel(split.x[:, 0, 0, 0]) // 20 - 1, split.y["left"])
        assert torch.equal(unpixel(split.x[:, 0, -1, -1]) // 20 - 1, split.y["right"])
    assert [len(s) for s in data.splits().values()] == [42, 9, 9]  # 70/15/15 like every dataset


def test_multimnist_is_built_once_and_cached_in_the_data_folder(home):
    write_mnist(home, "MNIST")
    first = load_dataset("multimnist", n_samples=40)
    assert data_shape(first) == (1, 28, 28)  # resized to 28 as in Sener & Koltun
    cached = list((home / "cache").glob("multimnist-*.pt"))
    assert len(cached) == 1
    refresh_datasets()  # forget the in-process copy: the next load reads the cache file
    again = load_dataset("multimnist", n_samples=40)
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.y["right"], again.test.y["right"])


def data_shape(data):
    return data.input_shape


def test_multifashion_reads_gzipped_files_and_names_the_clothes(home):
    write_mnist(home, "FashionMNIST", compress=True)
    data = load_dataset("multifashion", n_samples=40, image_size=36, max_shift=0)
    assert data.tasks["left"].classes == tuple(torchvision.datasets.FashionMNIST.classes)
    assert torch.equal(unpixel(data.train.x[:, 0, 0, 0]) // 20 - 1, data.train.y["left"])
    assert (home / "torchvision" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_the_file_names_we_ask_for_are_the_ones_torchvision_reads():
    from pathlib import Path

    assert multimnist.RAW_FILES == tuple(Path(u).stem for u, _ in torchvision.datasets.MNIST.resources)
    assert multimnist.RAW_FILES == tuple(Path(u).stem for u, _ in torchvision.datasets.FashionMNIST.resources)
    tv = torchvision.datasets.CIFAR10
    assert cifar10.FILES == tuple(n for n, _ in tv.train_list + tv.test_list) + (tv.meta["filename"],)
    assert cifar10.FOLDER == tv.base_folder
    assert celeba.TEXT_FILES == tuple(n for _, _, n in torchvision.datasets.CelebA.file_list if n.endswith(".txt"))
    assert celeba.FOLDER == torchvision.datasets.CelebA.base_folder


# ----- CIFAR-10 --------------------------------------------------------------------------

def write_cifar(home, per_batch=4, n_test=6):
    """Five training batches, a test batch and batches.meta, pickled as in the
    real archive; every pixel of a photo of class k is 10 * k + 5."""
    folder = home / "torchvision" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(batches):
        n = n_test if name == "test_batch" else per_batch
        labels = [(i * per_batch + j) % 10 for j in range(n)]
        data = np.repeat(np.array(labels, dtype=np.uint8)[:, None] * 10 + 5, 3072, axis=1)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(cifar10.CLASSES), "num_cases_per_batch": per_batch}, f)
    return folder


def matching_checksums(base, folder):
    """A subclass of torchvision's class whose MD5 sums are those of our tiny
    files. torchvision refuses any CIFAR-10 file whose MD5 differs from the
    official one (``_check_integrity`` and ``_load_meta``); rather than turn
    the check off, the test supplies the sums of the files it wrote, so the
    check itself still runs."""
    class TinyCIFAR10(base):
        train_list = [[n, md5(folder / n)] for n, _ in base.train_list]
        test_list = [[n, md5(folder / n)] for n, _ in base.test_list]
        meta = {**base.meta, "md5": md5(folder / base.meta["filename"])}

    return TinyCIFAR10


def test_cifar10_has_the_class_and_its_coarser_tasks(home, monkeypatch):
    folder = write_cifar(home)
    monkeypatch.setattr(cifar10, "tv_class", lambda: matching_checksums(torchvision.datasets.CIFAR10, folder))
    data = load_dataset("cifar10", n_samples=20)
    assert data.input_shape == (3, 32, 32)
    assert set(data.tasks) == {"class", "animal", "cat", "dog", "reconstruction"}  # every image dataset offers it
    for split in data.splits().values():
        label = (unpixel(split.x[:, 0, 0, 0]) - 5) // 10
        assert torch.equal(label, split.y["class"])
        names = [cifar10.CLASSES[k] for k in label]
        assert split.y["animal"].tolist() == [int(n not in cifar10.VEHICLES) for n in names]
        assert split.y["cat"].tolist() == [int(n == "cat") for n in names]
        assert split.y["dog"].tolist() == [int(n == "dog") for n in names]
    assert len(data.test) == 3 and len(data.train) == 14


def test_cifar10_files_with_wrong_checksums_are_refused_with_a_sentence(home):
    write_cifar(home)  # torchvision's real class: our tiny files do not match the official MD5 sums
    with pytest.raises(ValueError, match="CIFAR-10 files in .*cifar-10-batches-py cannot be read"):
        load_dataset("cifar10", n_samples=20)


# ----- CelebA ----------------------------------------------------------------------------

def write_celeba(home, n=30):
    """The five text lists torchvision's CelebA reads and a JPEG per face; a
    smiling face is red, the others blue, so labels can be checked."""
    folder = home / "torchvision" / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.RandomState(0)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    attrs = np.where(rng.rand(n, 40) < 0.5, 1, -1)
    smiling = celeba.ATTRIBUTES.index("Smiling")
    attrs[:, smiling] = np.where(np.arange(n) % 2 == 0, 1, -1)
    partition = [0] * (n - 10) + [1] * 5 + [2] * 5
    for name, row in zip(names, attrs):
        color = (220, 30, 30) if row[smiling] == 1 else (30, 30, 220)
        Image.new("RGB", (178, 218), color).save(folder / "img_align_celeba" / name, quality=95)
    # Real files separate columns with one or more spaces; torchvision skips the extra ones.
    lines = [str(n), " ".join(celeba.ATTRIBUTES)]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, attrs)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{m} {p}\n" for m, p in zip(names, partition)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{m} {i % 7 + 1}\n" for i, m in enumerate(names)))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{m} 95 71 226 313\n" for m in names))
    landmarks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{landmarks}\n" + "".join(f"{m} 69 109 106 113 77 142 73 152 108 154\n" for m in names))
    return folder, attrs


def test_celeba_attributes_chosen_as_tasks_train_on_small_faces(home, monkeypatch):
    folder, _ = write_celeba(home)

    class TinyCelebA(torchvision.datasets.CelebA):  # our files' MD5 sums, as for CIFAR-10 above
        file_list = [(i, md5(folder / n) if n.endswith(".txt") else m, n)
                     for i, m, n in torchvision.datasets.CelebA.file_list]

    monkeypatch.setattr(celeba, "tv_class", lambda: TinyCelebA)
    info = dataset_info("celeba")
    assert info.default_tasks == ("Smiling", "Male", "Eyeglasses", "Young")
    data = load_dataset("celeba", max_images=20, image_size=16)
    assert data.input_shape == (3, 16, 16)
    assert len(data.tasks) == 41 and data.tasks["Smiling"].classes == ("no", "yes")  # 40 attributes + reconstruction
    assert [len(s) for s in data.splits().values()] == [16, 2, 2]
    for split in data.splits().values():
        red = split.x[:, 0].mean((1, 2)) > split.x[:, 2].mean((1, 2))
        assert split.y["Smiling"].tolist() == red.long().tolist()

    # A config names the attributes directly; validate checks them against the 40.
    from mtlcore import ConfigError, ExperimentConfig, fit, validate

    config = ExperimentConfig.from_flat({
        "dataset.name": "celeba", "dataset.max_images": 20, "dataset.image_size": 16,
        "tasks": "Smiling,Male", "train.epochs": 1, "model.width": 8, "device": "cpu",
    })
    result = fit(config)
    assert set(result.summary["test"]) == {"Smiling", "Male"}
    with pytest.raises(ConfigError, match="has no task 'Smiles'"):
        validate(config.with_updates(tasks=("Smiles",)))


# ----- Offline -----------------------------------------------------------------------------

def test_offline_every_torchvision_set_is_unavailable_with_one_sentence_and_the_rest_works(home):
    listed = {info.name: info for info in list_datasets()}
    for name in TORCHVISION_SETS:
        reason = listed[name].unavailable_reason()
        assert reason and reason.count(". ") == 0 and reason.endswith(".")  # one sentence
        assert str(home / "torchvision") in reason and "place" in reason
        with pytest.raises(ValueError) as caught:
            load_dataset(name)
        assert str(caught.value) == reason
    assert "train-images-idx3-ubyte" in listed["multimnist"].unavailable_reason()
    assert "list_attr_celeba.txt" in listed["celeba"].unavailable_reason()
    assert listed["shapes"].unavailable_reason() is None
    assert len(load_dataset("shapes", n_samples=60).train) > 0


def test_a_failed_download_says_what_to_place_where_and_leaves_no_partial_file(home, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    seen = []
    with pytest.raises(DownloadError) as caught:
        dataset_info("multimnist").download(progress=lambda f, m: seen.append(f))
    message = str(caught.value)
    assert message.startswith("Downloading MNIST failed") and "no network" in message
    assert "place train-images-idx3-ubyte" in message
    raw = home / "torchvision" / "MNIST" / "raw"
    assert not raw.exists() or not any(raw.iterdir())
    assert dataset_info("multimnist").unavailable_reason() is not None


def test_a_download_reports_progress_and_torchvision_unpacks_it(home, monkeypatch, tmp_path):
    """A stand-in for the network serves a tiny MNIST archive set whose MD5
    sums are declared on a subclass, as on the real server."""
    write_mnist(tmp_path / "server", "MNIST", compress=True)
    served = tmp_path / "server" / "torchvision" / "MNIST" / "raw"

    class Response:
        def __init__(self, data):
            self.data, self.length = data, len(data)

        def read(self, n):
            chunk, self.data = self.data[:n], self.data[n:]
            return chunk

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake_urlopen(request, timeout=None):
        return Response((served / request.full_url.rsplit("/", 1)[1]).read_bytes())

    class ServedMNIST(torchvision.datasets.MNIST):
        mirrors = ["https://example.invalid/mnist/"]
        resources = [(n, md5(served / n)) for n, _ in torchvision.datasets.MNIST.resources]

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(multimnist.Source, "tv_class", lambda self: type("MNIST", (ServedMNIST,), {}))
    seen = []
    dataset_info("multimnist").download(progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert dataset_info("multimnist").unavailable_reason() is None
    assert len(load_dataset("multimnist", n_samples=20).train) == 14
