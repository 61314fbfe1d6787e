"""Grouped layers: N members' layers as one, so the template's own forward code trains all of them.

The members' batches travel as one batch of N x b rows, member after member
(member k owns rows k*b to k*b + b - 1). A layer that holds weights is
replaced by a grouped layer that sends each member's rows through that
member's weights; a layer without weights (ReLU, Flatten, max-pooling,
dropout) treats every row alike anyway. The model's own forward code runs
unchanged, on N times the batch.

Measured (benchmarks/README.md, 2-core EPYC, 1 thread): grouped layers cut
a packed step by a third against ``torch.func.vmap`` over the same stacked
weights (hard group 8.1 -> 5.4 ms, MMoE 11.6 -> 7.8 ms), because vmap and
``functional_call`` check and rewrite every operation on every call.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GROUPED_LAYERS", "GroupedBatchNorm", "GroupedLinear", "can_group", "grouped_model"]

class GroupedLinear(nn.Module):
    """N members' ``nn.Linear`` layers side by side: one batched matrix product instead of N small ones.

    ``weight`` is N x out x in and ``bias`` N x out (stacked members'
    weights). Rows keep any middle dimensions (MMoE's experts' outputs).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_member = x.reshape(self.weight.shape[0], -1, x.shape[-1])  # N x rows x in
        weight = self.weight.transpose(1, 2)
        if self.bias is None:
            out = torch.bmm(per_member, weight)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), per_member, weight)
        return out.reshape(*x.shape[:-1], out.shape[-1])


class GroupedBatchNorm(nn.Module):
    """N members' BatchNorm layers (Ioffe & Szegedy, ICML 2015), each normalising its own member's rows.

    The rows are regrouped so that member k's channel c becomes channel
    k*C + c of one ordinary batch norm over b rows: each member gets its own
    statistics and running averages, exactly as alone, from one kernel.
    (Normalising N x b rows together would mix the members' statistics.)
    """

    def __init__(self, like: nn.modules.batchnorm._BatchNorm, members: int, tensors: dict[str, torch.Tensor]):
        super().__init__()
        self.members, self.momentum, self.eps = members, like.momentum, like.eps
        self.track_running_stats = like.track_running_stats
        self.weight = nn.Parameter(tensors["weight"]) if "weight" in tensors else None
        self.bias = nn.Parameter(tensors["bias"]) if "bias" in tensors else None
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, tensors.get(name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As nn.BatchNorm's forward; every member has seen as many batches.
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative average
                factor = 1.0 / float(self.num_batches_tracked[0])
        batch_statistics = self.training or self.running_mean is None
        if not batch_statistics:
            return self._normalise_with_running_averages(x)
        keep = not self.training or self.track_running_stats
        b = x.shape[0] // self.members
        channels_of_all = x.reshape(self.members, b, *x.shape[1:]).transpose(0, 1).reshape(b, -1, *x.shape[2:])
        out = F.batch_norm(channels_of_all, _flat(self.running_mean if keep else None),
                           _flat(self.running_var if keep else None), _flat(self.weight), _flat(self.bias),
                           batch_statistics, factor, self.eps)
        return out.reshape(b, self.members, *x.shape[1:]).transpose(0, 1).reshape(x.shape)

    def _normalise_with_running_averages(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation: a fixed affine map per member and channel, with no regrouping of the rows.

        x * scale + shift with scale = weight / sqrt(var + eps) and shift =
        bias - mean * scale: what BatchNorm's own kernel computes (the same
        numbers), without two copies of the activations (hard sharing's
        evaluation pass 1.6x faster).
        """
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        per_channel = (self.members, 1, -1, *(1,) * (x.dim() - 2))  # N x 1 x C x 1...
        rows = x.reshape(self.members, -1, *x.shape[1:])
        return torch.addcmul(shift.view(per_channel), rows, scale.view(per_channel)).reshape(x.shape)


def _flat(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """N x C -> N*C, a view (the running averages are updated in place through it)."""
    return None if tensor is None else tensor.reshape(-1)


def _grouped_linear(layer: nn.Linear, members: int, tensors: dict[str, torch.Tensor]) -> GroupedLinear:
    return GroupedLinear(tensors["weight"], tensors.get("bias"))


# Each layer type with a grouped version, and how to build it from (layer,
# members, its stacked tensors by name). Exact types: a subclass may have a
# forward of its own.
GROUPED_LAYERS = {nn.Linear: _grouped_linear, nn.BatchNorm1d: GroupedBatchNorm, nn.BatchNorm2d: GroupedBatchNorm,
                  nn.BatchNorm3d: GroupedBatchNorm}


def _holds_tensors(layer: nn.Module) -> bool:
    """Whether ``layer`` itself (not its children) has parameters or buffers."""
    return any(True for _ in layer.parameters(recurse=False)) or any(True for _ in layer.buffers(recurse=False))


def can_group(model: nn.Module) -> bool:
    """Whether every layer of ``model`` that holds weights or buffers has a grouped version.

    True for MLP trunks and heads, hence hard sharing, single-task models
    and MMoE on vector data; convolutions and cross-stitch units are stacked
    with ``vmap`` instead. Grouping assumes that the model's forward treats
    the rows of a batch independently except in BatchNorm, as every
    architecture here does (``tests/test_packed_speedups.py`` compares
    packed and lone results).
    """
    return all(type(m) in GROUPED_LAYERS for m in model.modules() if _holds_tensors(m))


def grouped_model(template: nn.Module, members: int, stacked: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``template`` whose layers are grouped, holding the ``stacked`` tensors (by their names)."""
    model = copy.deepcopy(template)
    for name, layer in template.named_modules():
        build = GROUPED_LAYERS.get(type(layer))
        if build is not None:
            prefix = f"{name}."
            own = {key[len(prefix):]: value for key, value in stacked.items()
                   if key.startswith(prefix) and "." not in key[len(prefix):]}
            model.set_submodule(name, build(layer, members, own))
    return model
