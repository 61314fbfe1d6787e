"""How fast does mtlcore train, against the loop a user would write from a tutorial?

Three ways, in one process, on the same model, data, batch size and number of
steps (the ``--epochs`` of each workload), taken in turns ``--repeats``
times so that a busy moment on the machine slows both alike; medians:

    engine     mtlcore's ``fit`` with its defaults for this machine (bfloat16
               autocast where native and worth it, channels-last, fused Adam,
               data resident on the device, one read of the losses per logged
               step), including its per-epoch validation and final test
    reference  the usual tutorial: a ``torch.utils.data.Dataset`` over the same
               already-decoded tensors, a ``DataLoader`` (shuffle, default
               collate, no workers), float32, the summed per-task losses,
               ``loss.item()`` every step, validation every epoch and a test
    resident   the same tutorial loop with its batches cut from tensors on the
               device instead of a DataLoader (how much of the gain is that)

Two workloads: ``shapes`` (the 32 px CNN, hard sharing, 3 tasks: compute-
bound on a CPU) and ``digits`` (8 px images, tiny layers: overhead-bound).
For each: samples per second of both, and the achieved FLOP/s of the
engine's training step (FLOPs counted by torch.utils.flop_counter) as a
share of this machine's peak, a large matrix product timed here in the same
precision. Then the step-time ratios of the gradient diagnostics (every
step) and of UPGrad against a plain equal-weight step, and the machine.
The last line is ``speedup: X.XX``, the engine over the reference, the
smaller of the two workloads.

    python benchmarks/bench_train.py [--repeats 3] [--threads N] [--device cpu]

Never run as a test: timings on a shared machine are for people to read.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtlcore import WEIGHTINGS, ExperimentConfig, fit, load_dataset  # noqa: E402
from mtlcore.doctor import cpu_name  # noqa: E402  (the same name the doctor report prints)
from mtlcore.engine import TrainingRun  # noqa: E402
from mtlcore.models import build_model  # noqa: E402

WORKLOADS = {
    # name: (flat config, epochs)
    "shapes": ({"dataset.name": "shapes", "tasks": "shape,color,size", "model.arch": "hard"}, 2),
    "digits": ({"dataset.name": "digits", "tasks": "digit,parity,big,ink", "model.arch": "hard"}, 5),
    "synthetic": ({"dataset.name": "synthetic", "tasks": "task_a,task_b", "model.arch": "hard"}, 3),
}


# ----- the machine -----------------------------------------------------------------

def machine(device: torch.device) -> str:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    return (f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}, "
            f"GPU {gpu}, torch {torch.__version__}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, sizes=(512, 1024, 2048), repeats: int = 5) -> float:
    """FLOP/s of the fastest large square matrix product in ``dtype``: this machine's peak, as reachable here."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b  # warm-up
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            a @ b
            sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


# ----- the reference: the tutorial loop ---------------------------------------------

class TensorPairs(Dataset):
    """One example at a time, as a tutorial's Dataset returns it: (image, {task: target})."""

    def __init__(self, x: torch.Tensor, y: dict[str, torch.Tensor]):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], {t: v[i] for t, v in self.y.items()}


def reference_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if target.dtype == torch.long:
        return F.cross_entropy(output, target)
    return F.mse_loss(output.squeeze(-1), target)


def reference_fit(config: ExperimentConfig, data, device: torch.device) -> int:
    """Train and evaluate the way the tutorial does; returns the number of training steps."""
    tasks = list(config.tasks)
    torch.manual_seed(config.seed)
    model = build_model(config, [data.tasks[t] for t in tasks], data.input_kind, data.input_shape).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    train = DataLoader(TensorPairs(data.train.x, data.train.y), batch_size=config.train.batch_size, shuffle=True)
    val = DataLoader(TensorPairs(data.val.x, data.val.y), batch_size=1024)
    test = DataLoader(TensorPairs(data.test.x, data.test.y), batch_size=1024)

    def evaluate(loader) -> dict[str, float]:
        model.eval()
        total = {t: 0.0 for t in tasks}
        with torch.no_grad():
            for xb, yb in loader:
                xb = xb.to(device)
                out = model(xb)
                for t in tasks:
                    total[t] += reference_loss(out[t], yb[t].to(device)).item() * len(xb)
        return {t: v / len(loader.dataset) for t, v in total.items()}

    steps = 0
    for _ in range(config.train.epochs):
        model.train()
        running = 0.0
        for xb, yb in train:
            xb = xb.to(device)
            optimizer.zero_grad()
            out = model(xb)
            loss = sum(reference_loss(out[t], yb[t].to(device)) for t in tasks)
            loss.backward()
            optimizer.step()
            running += loss.item()
            steps += 1
        evaluate(val)
    evaluate(test)
    return steps


def resident_fit(config: ExperimentConfig, data, device: torch.device) -> int:
    """The tutorial loop without its ``DataLoader``: batches cut from tensors already on the device.

    Everything else as ``reference_fit`` (float32, for-loop Adam, ``.item()``
    every step). Between the two ways it shows what the DataLoader costs;
    between it and the engine, what the engine's own choices buy.
    """
    tasks = list(config.tasks)
    torch.manual_seed(config.seed)
    model = build_model(config, [data.tasks[t] for t in tasks], data.input_kind, data.input_shape).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    splits = {name: (split.x.to(device), {t: v.to(device) for t, v in split.y.items()})
              for name, split in (("train", data.train), ("val", data.val), ("test", data.test))}

    def batches(name: str, size: int, shuffle: bool):
        x, y = splits[name]
        order = torch.randperm(len(x), device=device) if shuffle else torch.arange(len(x), device=device)
        for start in range(0, len(x), size):
            idx = order[start : start + size]
            yield x[idx], {t: v[idx] for t, v in y.items()}

    def evaluate(name: str) -> None:
        model.eval()
        with torch.no_grad():
            for xb, yb in batches(name, 1024, False):
                out = model(xb)
                for t in tasks:
                    reference_loss(out[t], yb[t]).item()

    steps = 0
    for _ in range(config.train.epochs):
        model.train()
        for xb, yb in batches("train", config.train.batch_size, True):
            optimizer.zero_grad()
            out = model(xb)
            loss = sum(reference_loss(out[t], yb[t]) for t in tasks)
            loss.backward()
            optimizer.step()
            loss.item()
            steps += 1
        evaluate("val")
    evaluate("test")
    return steps


# ----- the engine -------------------------------------------------------------------

def engine_fit(config: ExperimentConfig, data, device: torch.device) -> int:
    result = fit(config, run=TrainingRun(config, data, device))
    return result.summary["steps"]


def training_batches(run: TrainingRun, n: int):
    """``n`` training batches, as the engine draws them."""
    batches = []
    while len(batches) < n:
        batches += list(run.batches(run.splits["train"], run.config.train.batch_size, shuffle=True))
    return batches[:n]


def step_flops(run: TrainingRun) -> int:
    """FLOPs of one engine training step (forward and backward; the optimiser's are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    x, y = training_batches(run, 1)[0]
    with FlopCounterMode(display=False) as counter:
        run.train_step(x, y)
    return int(counter.get_total_flops())


def block_seconds(run: TrainingRun, batches, measure: bool) -> float:
    """Wall time of training on ``batches`` (a block of steps, so amortised costs count)."""
    sync(run.device)
    start = time.perf_counter()
    for x, y in batches:
        run.train_step(x, y, measure=measure)
    sync(run.device)
    return time.perf_counter() - start


def median_ratio(pairs: list[tuple[float, float]]) -> float:
    return statistics.median(b for _, b in pairs) / statistics.median(a for a, _ in pairs)


# ----- main --------------------------------------------------------------------------

def compare_loops(name: str, flat: dict, epochs: int, device: torch.device, repeats: int) -> float:
    config = ExperimentConfig.from_flat({**flat, "train.epochs": epochs, "device": str(device)})
    data = load_dataset(config.dataset.name, seed=config.dataset.seed, **config.dataset.options)
    n_train = len(data.train)
    times = {"engine": [], "reference": [], "resident": []}
    steps = {}
    ways = (("engine", engine_fit), ("reference", reference_fit), ("resident", resident_fit))
    for turn in range(repeats + 1):  # the first turn warms up all (lazy imports, allocator)
        for way, train in ways:
            sync(device)
            start = time.perf_counter()
            steps[way] = train(config, data, device)
            sync(device)
            if turn:
                times[way].append(time.perf_counter() - start)
    assert steps["engine"] == steps["reference"] == steps["resident"], steps
    run = TrainingRun(config, data, device)
    rate = {way: epochs * n_train / statistics.median(t) for way, t in times.items()}
    speedup = rate["engine"] / rate["reference"]
    print(f"\n{name}: {steps['engine']} steps of batch {config.train.batch_size} ({epochs} epochs of {n_train}), "
          f"tasks {','.join(config.tasks)}, engine choices {run.speed.describe()}")
    for way in ("engine", "reference", "resident"):
        spread = ", ".join(f"{t:.2f}" for t in times[way])
        print(f"  {way:9s} {rate[way]:9.0f} samples/s   (seconds per run: {spread})")
    print(f"  engine / reference: x{speedup:.2f}   (of which dropping the DataLoader: "
          f"x{rate['resident'] / rate['reference']:.2f}; the engine's choices on top: x{rate['engine'] / rate['resident']:.2f})")
    return speedup


def achieved_flops(name: str, flat: dict, device: torch.device, repeats: int) -> None:
    config = ExperimentConfig.from_flat({**flat, "device": str(device)})
    data = load_dataset(config.dataset.name, seed=config.dataset.seed, **config.dataset.options)
    run = TrainingRun(config, data, device)
    flops = step_flops(run)
    batches = training_batches(run, 20)
    block_seconds(run, batches[:3], False)
    per_step = min(block_seconds(run, batches, False) / len(batches) for _ in range(repeats))
    dtype = torch.bfloat16 if run.speed.precision == "bfloat16" else torch.float32
    peak = matmul_peak(dtype, device)
    achieved = flops / per_step
    print(f"  {name} engine step: {flops / 1e9:.3f} GFLOP in {per_step * 1000:.1f} ms (best block of 20) = "
          f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of the {dtype} matmul peak {peak / 1e9:.1f} GFLOP/s")


def overhead_ratios(device: torch.device, repeats: int) -> None:
    """Diagnostics every step, and UPGrad, against a plain equal-weight step (shapes, 3 tasks)."""
    flat = {**WORKLOADS["shapes"][0], "device": str(device)}
    data = load_dataset("shapes")
    def make(method: str, **more) -> TrainingRun:
        return TrainingRun(ExperimentConfig.from_flat({**flat, "weighting.method": method, **more}), data, device)

    cases = {  # label: (run, measure diagnostics)
        "plain equal-weight step": (make("equal"), False),
        "diagnostics, exact cosine": (make("equal"), True),
        "diagnostics, features": (make("equal", **{"train.diagnostics_cosine": "features"}), True),
    }
    if "upgrad" in WEIGHTINGS:
        cases["UPGrad (torchjd)"] = (make("upgrad"), False)
    else:  # a solver is missing on this install: say so and measure the rest
        print("skipped: UPGrad is not available here (python -m mtlcore doctor says which package is missing)")
    blocks = {label: [] for label in cases}
    batches = training_batches(cases["plain equal-weight step"][0], 20)  # two lookaheads in every block
    for turn in range(repeats + 1):
        for label, (run, measure) in cases.items():
            seconds = block_seconds(run, batches, measure)
            if turn:
                blocks[label].append(seconds)
    base = statistics.median(blocks["plain equal-weight step"])
    print(f"\noverheads on shapes, 3 tasks, every step, blocks of {len(batches)} steps (median of {repeats}):")
    for label, times in blocks.items():
        t = statistics.median(times)
        print(f"  {label:27s} {t / len(batches) * 1000:7.1f} ms  x{t / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="one workload (no overheads, no speedup line)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(machine(device))
    peak32 = matmul_peak(torch.float32, device)
    line = f"matmul peak: float32 {peak32 / 1e9:.1f} GFLOP/s"
    from mtlcore.speed import native_bfloat16

    if native_bfloat16(device):
        line += f", bfloat16 {matmul_peak(torch.bfloat16, device) / 1e9:.1f} GFLOP/s"
    print(line + " (best of sizes 512-2048)")
    names = [args.only] if args.only else list(WORKLOADS)
    speedups = []
    for name in names:
        flat, epochs = WORKLOADS[name]
        speedups.append(compare_loops(name, flat, epochs, device, args.repeats))
        achieved_flops(name, flat, device, args.repeats)
    if args.only:
        return
    overhead_ratios(device, args.repeats)
    print(machine(device))
    print(f"speedup: {min(speedups):.2f}")


if __name__ == "__main__":
    main()
