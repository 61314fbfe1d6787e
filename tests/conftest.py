"""Shared test settings: CPU only, few threads, tiny data."""
import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CI has no GPU; make sure none is used

import pytest
import torch

# One thread: the suite also runs worker processes, and two busy threads on
# two shared cores mostly wait for each other.
torch.set_num_threads(1)


@pytest.fixture
def tiny():
    """Flat settings for a very short run on shapes."""
    return {
        "dataset.name": "shapes",
        "dataset.n_samples": 400,
        "train.epochs": 1,
        "train.max_samples": 200,
        "device": "cpu",
    }
