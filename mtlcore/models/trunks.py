"""Trunks: the feature extractors that tasks share (or each own a copy of).

A trunk maps an input batch to a batch of feature vectors of size
``out_features``. It is split into ``stages`` so that cross-stitch units can
be placed between stages; running the stages in order is the whole trunk.

Trunks are registered by name in ``TRUNKS`` (``model.trunk``), each with the
inputs it takes; ``auto`` picks a CNN for images and an MLP for vectors.
``trunk_problem`` is the registry's own check of a config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..registry import Registry


class Trunk(nn.Module):
    """A sequence of stages; ``forward`` runs them all."""

    out_features: int

    def __init__(self, stages: list[nn.Module], out_features: int):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


def conv_block(in_channels: int, out_channels: int, batchnorm: bool) -> nn.Sequential:
    """conv 3x3 -> (BatchNorm) -> ReLU -> 2x2 max-pool: halves the image side."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def small_cnn(input_shape: tuple[int, ...], width: int, batchnorm: bool, dropout: float, **_) -> Trunk:
    """A small CNN for images of 8 to 64 pixels a side.

    Up to three conv blocks (fewer for tiny images such as the 8x8 digits),
    then the feature map is *flattened* rather than globally averaged: the
    position tasks (``x``, ``y`` of shapes) need to know where things are.
    """
    channels, height, width_px = input_shape
    side = min(height, width_px)
    n_blocks = max(1, min(3, int(math.log2(side)) - 1))  # 8 px -> 2 blocks, 32 px -> 3
    stages: list[nn.Module] = []
    c_in = channels
    for i in range(n_blocks):
        c_out = width * min(2**i, 2)
        stages.append(conv_block(c_in, c_out, batchnorm))
        c_in = c_out
    final_side = min(4, side // 2**n_blocks)
    map_size = (height // 2**n_blocks, width_px // 2**n_blocks)  # each max-pool halves, rounding down
    # Pooling a map that already has the target size copies it for nothing
    # (3-5% of the shapes step); Identity keeps the layer's index, so saved
    # weights still load.
    pool = nn.Identity() if map_size == (final_side, final_side) else nn.AdaptiveAvgPool2d(final_side)
    hidden = 4 * width
    head: list[nn.Module] = [
        pool,
        nn.Flatten(),
        nn.Linear(c_in * final_side * final_side, hidden),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    stages.append(nn.Sequential(*head))
    return Trunk(stages, hidden)


def mlp(input_shape: tuple[int, ...], width: int, batchnorm: bool, dropout: float, layers: int = 2,
        hidden: int = 0) -> Trunk:
    """Fully connected layers for vector inputs (or flattened small images): ``layers`` of ``hidden`` units.

    ``hidden`` 0 means 2 x ``width``; Ma et al.'s matched budget (MMoE, KDD 2018) sets it exactly
    (113 units for the shared bottom, 16 per expert) with one layer.
    """
    in_features = int(math.prod(input_shape))
    hidden = hidden or 2 * width
    stages: list[nn.Module] = []
    for i in range(layers):
        block: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        block.append(nn.Linear(in_features if i == 0 else hidden, hidden))
        if batchnorm:
            block.append(nn.BatchNorm1d(hidden))
        block.append(nn.ReLU(inplace=True))
        if dropout > 0:
            block.append(nn.Dropout(dropout))
        stages.append(nn.Sequential(*block))
    return Trunk(stages, hidden)


def resnet18(input_shape: tuple[int, ...], width: int, batchnorm: bool, dropout: float, **_) -> Trunk:
    """torchvision's ResNet-18, randomly initialised, adapted to small images.

    The 7x7 stride-2 stem and its max-pool would shrink a 32 px image to
    nothing useful, so (as is usual for CIFAR-sized inputs) the stem becomes a
    3x3 stride-1 convolution. ``width`` and ``batchnorm`` do not apply: it is
    torchvision's model as published.
    """
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None)
    net.conv1 = nn.Conv2d(input_shape[0], 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    stem = nn.Sequential(net.conv1, net.bn1, net.relu)
    tail: list[nn.Module] = [net.layer4, net.avgpool, nn.Flatten()]
    if dropout > 0:
        tail.append(nn.Dropout(dropout))
    stages = [nn.Sequential(stem, net.layer1), net.layer2, net.layer3, nn.Sequential(*tail)]
    return Trunk(stages, 512)


@dataclass(frozen=True)
class TrunkChoice:
    """A ``TRUNKS`` entry: how to build the trunk, and which inputs it takes."""

    build: Callable[..., Trunk] | None  # None: "auto", which stands for another entry (AUTO_TRUNK)
    input_kinds: tuple[str, ...]
    takes_mlp_options: bool = False  # model.layers, model.hidden, model.expert_hidden shape it


TRUNKS: Registry[TrunkChoice] = Registry("trunk")
TRUNKS.register("auto")(TrunkChoice(None, ("image", "vector")))
TRUNKS.register("cnn")(TrunkChoice(small_cnn, ("image",)))
TRUNKS.register("mlp")(TrunkChoice(mlp, ("image", "vector"), takes_mlp_options=True))
TRUNKS.register("resnet18")(TrunkChoice(resnet18, ("image",)))
AUTO_TRUNK = {"image": "cnn", "vector": "mlp"}  # what model.trunk=auto builds for each kind of input
TRUNK_BUILDERS = {name: TRUNKS.get(name).build for name in TRUNKS if TRUNKS.get(name).build}  # an older name


def resolve_trunk(name: str, input_kind: str) -> str:
    """The registered trunk that ``name`` builds for ``input_kind`` inputs (``auto`` chooses)."""
    return AUTO_TRUNK[input_kind] if TRUNKS.get(name).build is None else name


def trunk_problem(model: ModelConfig, input_kind: str, dataset: str) -> str | None:
    """Why ``model.trunk`` cannot take ``dataset``'s ``input_kind`` inputs with these settings; None if it can."""
    if model.trunk not in TRUNKS:
        return f"Unknown trunk {model.trunk!r} (model.trunk); choose one of: {', '.join(TRUNKS.names())}."
    if input_kind not in TRUNKS.get(model.trunk).input_kinds:
        fitting = " or ".join(name for name in TRUNKS if input_kind in TRUNKS.get(name).input_kinds)
        return f"Dataset {dataset!r} has {input_kind} inputs; model.trunk must be {fitting}."
    resolved = resolve_trunk(model.trunk, input_kind)
    if not TRUNKS.get(resolved).takes_mlp_options and (
            model.hidden or model.expert_hidden or model.layers != ModelConfig.layers):
        return (f"model.layers, model.hidden and model.expert_hidden shape the MLP trunk (model.trunk=mlp, the "
                f"default for vector inputs); this model has model.trunk={model.trunk} with "
                f"{input_kind} inputs (use model.width).")
    return None


def build_trunk(name: str, input_kind: str, input_shape: tuple[int, ...], width: int,
                batchnorm: bool, dropout: float, **mlp_options) -> Trunk:
    """The trunk called ``name``; ``auto`` is a CNN for images, an MLP for vectors.

    ``mlp_options`` (``layers``, ``hidden``) shape the MLP; the other trunks ignore them
    (``trunk_problem`` refuses them there).
    """
    build = TRUNKS.get(resolve_trunk(name, input_kind)).build
    return build(input_shape, width, batchnorm, dropout, **mlp_options)


def make_head(in_features: int, out_features: int, hidden: int = 0) -> nn.Module:
    """A task's own head ("tower"): one hidden layer (``hidden`` units, 0 = half the features, at least 16),
    then the task's outputs."""
    hidden = hidden or max(16, in_features // 2)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))
