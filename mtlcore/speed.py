"""How a training step is made fast on the machine at hand.

Three choices, made once per run from the device, the config and the model's
size -- never from a clock, so that one seed still gives one result:

precision   ``train.precision``: ``auto``, ``float32`` or ``bfloat16``.
            With bfloat16, convolutions and matrix products run under
            ``torch.autocast`` in bfloat16, which CPUs with AVX512_BF16 or
            AMX and recent GPUs compute about twice as fast as float32.
            Accuracy is kept the usual mixed-precision way (Micikevicius et
            al., ICLR 2018): the weights, their gradients and the optimiser's
            state stay float32, and so do the losses and BatchNorm's
            statistics (autocast runs them in float32); bfloat16 has float32's
            exponent range, so no loss scaling is needed (Kalamkar et al.,
            2019). ``auto`` picks bfloat16 only where the hardware has it
            natively *and* the model is large enough for it to pay: casting
            costs a little per layer, so a tiny model (digits, synthetic) is
            faster in float32; see ``BF16_MIN_FLOPS``.
layout      Channels-last memory (N, H, W, C) for convolutional models: the
            CPU's convolution library (oneDNN) and tensor-core GPUs compute
            in that order, so the default (N, C, H, W) costs a reorder at
            every layer. Same numbers, different order in memory.
optimiser   ``fused=True``: one kernel updates every parameter, instead of
            a dozen small operations per parameter tensor.

    >>> speed = choose_speed(config.train.precision, device, model, input_shape, batch_size)
    >>> model = speed.prepare_model(model); x = speed.prepare_inputs(x)
    >>> with speed.autocast(): outputs = model(x)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

# train.precision: auto (bfloat16 where native and it pays), float32, bfloat16 (see choose_speed).
PRECISIONS = ("auto", "float32", "bfloat16")

# Forward FLOPs of one training batch above which bfloat16 pays on a CPU.
# Measured on a 2-core AVX512_BF16 EPYC (benchmarks/README.md): the shapes
# CNN at width 32 (1.0 GFLOP a batch) trains 1.8x faster in bfloat16, at
# width 16 (0.29 GFLOP) 1.1x, multidigits (0.14 GFLOP) the same, digits
# (0.05 GFLOP) and shapes at 16 px (0.02 GFLOP) 1.2 to 1.9x *slower*.
BF16_MIN_FLOPS = 0.2e9


def native_bfloat16(device: torch.device) -> bool:
    """True when ``device`` computes bfloat16 in hardware (not emulated).

    CPUs: the AVX512_BF16 or AMX-BF16 instructions (oneDNN emulates bfloat16
    on other x86 CPUs, slower than float32). GPUs: what CUDA reports.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = torch._C._cpu._get_cpu_capability()  # a dict of instruction sets
    except (AttributeError, RuntimeError):  # an older torch: be safe, use float32
        return False
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def forward_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of the convolutions and linear layers in one forward pass of ``example``.

    Those layers are where the time goes, and where bfloat16 helps. Counted
    by hand from each layer's output (2 FLOPs per multiply-add), as torch's
    ``FlopCounterMode`` would, without its second and a half of imports on
    first use. One forward pass of a single example, in eval mode without
    gradients: BatchNorm statistics and the random stream are left alone.
    """
    total = 0

    def count(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += 2 * output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def is_convolutional(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@dataclass(frozen=True)
class Speed:
    """The speed choices of one run (see the module's docstring)."""

    device_type: str
    dtype: torch.dtype | None  # autocast dtype; None: plain float32
    channels_last: bool
    fused_optimizer: bool

    @property
    def precision(self) -> str:
        return "bfloat16" if self.dtype == torch.bfloat16 else "float32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context to run forward passes in (a no-op in float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in the model's memory layout (batches indexed from it keep it)."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def make_optimizer(self, factory: Callable[..., torch.optim.Optimizer], params, **kwargs) -> torch.optim.Optimizer:
        """``factory(params, **kwargs)``, fused where the optimiser and device support it."""
        if self.fused_optimizer:
            try:
                return factory(params, fused=True, **kwargs)
            except (TypeError, RuntimeError):  # RMSprop has no fused kernel; some devices neither
                pass
        return factory(params, **kwargs)

    def describe(self) -> dict[str, object]:
        """Plain values for a run's summary."""
        return {"precision": self.precision, "channels_last": self.channels_last,
                "fused_optimizer": self.fused_optimizer}


def choose_speed(precision: str, device: torch.device, model: nn.Module, input_shape: tuple[int, ...],
                 batch_size: int) -> Speed:
    """The speed choices for ``model`` training on ``device`` in batches of ``batch_size``.

    ``precision``: ``float32`` and ``bfloat16`` are obeyed (bfloat16 also
    where it is emulated, which is slow but lets anyone see its effect);
    ``auto`` picks bfloat16 where it is native and the model is big enough.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}.")
    native = native_bfloat16(device)
    if precision == "auto" and native:
        example = torch.zeros((1, *input_shape), device=device)
        big = forward_flops(model, example) * batch_size >= BF16_MIN_FLOPS
        precision = "bfloat16" if big else "float32"
    dtype = torch.bfloat16 if precision == "bfloat16" and device.type in ("cpu", "cuda") else None
    # Channels-last pays on the CPU always, on a GPU with bfloat16 (tensor cores).
    channels_last = (len(input_shape) == 3 and is_convolutional(model)
                     and (device.type == "cpu" or (device.type == "cuda" and dtype is not None)))
    return Speed(device.type, dtype, channels_last, fused_optimizer=device.type in ("cpu", "cuda"))


def stacking_pays(device: torch.device, model: nn.Module) -> bool:
    """Whether training N copies of ``model`` as one stacked model beats N lone runs.

    ``torch.func.vmap`` turns a stacked convolution into one grouped
    convolution, which oneDNN computes more slowly on a CPU than N ordinary
    ones (measured: 0.4x to 1.2x, benchmarks/README.md), while N small matrix
    products become one batched product, which is much faster. On a GPU a
    small model leaves the device idle either way, so stacking always pays.
    """
    return device.type != "cpu" or not is_convolutional(model)
