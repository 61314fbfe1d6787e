"""Shared test settings: CPU only, few threads, tiny data."""
import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CI has no GPU; make sure none is used

import pytest
import torch

torch.set_num_threads(2)


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
