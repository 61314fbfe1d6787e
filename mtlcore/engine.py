"""The training engine: one train step, evaluation, and the fit loop.

Like minGPT's trainer, the loop knows nothing about particular architectures
or weighting methods: it asks the model for its outputs and its own penalty,
hands the per-task losses to the weighting method, and reports progress to
callbacks (progress bar, metrics file, run store, checkpoints...).

Speed (``benchmarks/README.md`` has the measurements): the data lives on the
device and a batch is one indexing operation; the forward pass runs under the
run's ``Speed`` choices (bfloat16 autocast, channels-last, fused optimiser;
``speed.py``); and the losses are read back to the host once per *logged*
step, for the log and the divergence check together, never per task.

    >>> from mtlcore import ExperimentConfig, fit
    >>> result = fit(ExperimentConfig())
    >>> result.summary["test"]["shape"]["accuracy"]
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call

from .checkpoint import checkpoint_payload, load_checkpoint, restore_training_state
from .config import ExperimentConfig
from .data import MTLData, Split, TaskSpec, load_dataset
from .devices import resolve_device
from .diagnostics import Diagnostics, copied_buffers
from .losses import make_loss
from .metrics import SplitMeter, TaskMeter, score_from_losses
from .models import MultiTaskModel, build_model
# How a run ends, shared with the packed loop; the names stay importable from here.
from .outcome import DIVERGED_MESSAGE, count_parameters, diverged_message, divergence, end_summary, first_non_finite  # noqa: F401
from .optim import make_optimizer, make_scheduler  # noqa: F401  (also imported from here by the packed loop)
from .speed import Speed, choose_speed
from .weighting import Weighting, create_weighting
from .weighting.jacobian import TaskGradients

EVAL_BATCH = 1024
# Key of the training split's "keeps its label" mask in a batch's targets (train.label_fraction < 1).
LABELLED = "_labelled"
class Callback:
    """Hooks called by ``fit``; override the ones you need."""

    def on_fit_start(self, run: "TrainingRun") -> None: ...

    def on_step_begin(self, run: "TrainingRun") -> None:
        """Before each training step (live steering changes the run here, between two steps)."""

    def on_step_end(self, run: "TrainingRun", logs: dict[str, Any]) -> None: ...

    def on_epoch_end(self, run: "TrainingRun", logs: dict[str, Any]) -> None: ...

    def on_fit_end(self, run: "TrainingRun", result: "FitResult") -> None: ...

    def should_stop(self) -> bool:
        """Return True to cancel the run (checked every step)."""
        return False


@dataclass
class FitResult:
    """What ``fit`` returns: how the run ended and its final metrics."""

    status: str  # finished, cancelled or diverged
    message: str
    summary: dict[str, Any]
    run: "TrainingRun" = field(repr=False)


class TrainingRun:
    """Everything one training run holds: data, model, optimiser, method.

    Built from a config by ``TrainingRun.create``; ``fit`` drives it.
    """

    def __init__(self, config: ExperimentConfig, data: MTLData, device: torch.device):
        self.config = config
        self.device = device
        self.specs: dict[str, TaskSpec] = {t: data.tasks[t] for t in config.tasks}
        self.target_stats = {t: data.target_stats[t] for t in config.tasks if t in data.target_stats}
        self.input_kind = data.input_kind
        self.input_shape = data.input_shape
        torch.manual_seed(config.seed)
        model = build_model(config, list(self.specs.values()), data.input_kind, data.input_shape).to(device)
        self.speed: Speed = choose_speed(config.train.precision, device, model, tuple(data.input_shape),
                                         config.train.batch_size)
        self.model: MultiTaskModel = self.speed.prepare_model(model)
        train = data.train if not config.train.max_samples else data.train.subset(config.train.max_samples)
        # Small datasets live on the device, in the model's memory layout:
        # a step is one indexing operation, not a copy.
        self.splits: dict[str, Split] = {}
        for name, split in (("train", train), ("val", data.val), ("test", data.test)):
            split = split.select_tasks(config.tasks).to(device)
            self.splits[name] = Split(self.speed.prepare_inputs(split.x), split.y)
        n_train = len(self.splits["train"])
        # Few labels: a fixed subset (chosen by the dataset's seed, so seeds vary only the training) keeps them.
        self.labelled = labelled_mask(n_train, config.train.label_fraction, config.dataset.seed)
        if self.labelled is not None:
            self.splits["train"].y[LABELLED] = self.labelled.to(device)
        # Bagging: the rows of this member's bootstrap sample (None: the training split as it is).
        self.train_rows = bootstrap_rows(n_train, config.seed).to(device) if config.train.bootstrap else None
        self.loss_fns = {t: make_loss(spec, config.loss) for t, spec in self.specs.items()}
        self.weighting: Weighting = create_weighting(config.weighting.method, **config.weighting.options)
        self.weighting.setup(list(config.tasks), dict(config.loss.weights), self.model,
                             kinds={t: spec.kind for t, spec in self.specs.items()})
        if config.train.init_from:  # a fork: the parent's saved weights, not fresh ones
            self.start_from(config.train.init_from)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        params = list(self.model.parameters()) + list(self.weighting.parameters())
        self.optimizer = make_optimizer(config, params, self.speed)
        self.scheduler = make_scheduler(config, self.optimizer)
        self.diagnostics = Diagnostics(config.train.diagnostics_every, cosine=config.train.diagnostics_cosine)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.epoch = 0
        self.kept_epoch: int | None = None  # set when early stopping restores an earlier epoch
        # Softmax temperatures fitted on the validation split after training (mtlcore.calibration).
        self.temperatures: dict[str, float] = {}

    def start_from(self, path: str) -> None:
        """Load the model (and, for the same method, the weighting's state) of the checkpoint at ``path``.

        (mtlcore.checkpoint owns the format; a missing or foreign file raises its CheckpointError.)

        A fork keeps its parent's model (dataset, tasks, architecture), so the
        weights fit; what it changes (weights, learning rate, optimiser,
        epochs, regularisers) acts from its first step. The optimiser starts
        afresh: a checkpoint keeps no optimiser state.
        """
        restore_training_state(self, load_checkpoint(path, self.device))

    def set_task_weights(self, weights: dict[str, float]) -> None:
        """Live steering: new slider weights from the next step (ValueError if the method cannot take them)."""
        self.weighting.set_task_weights(weights)

    def set_learning_rate(self, lr: float) -> None:
        """Live steering: the optimiser's learning rate from the next step; a schedule goes on from it."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.scheduler is not None:  # its base rate too, or a cosine/step schedule would return to the old one
            self.scheduler.base_lrs = [lr for _ in self.scheduler.base_lrs]

    @classmethod
    def create(cls, config: ExperimentConfig, device: torch.device | str | None = None) -> "TrainingRun":
        # No validate() here: a config reaches fit through a boundary that checked it (the page,
        # Runner.submit, the command line, a study's plan; mtlcore.validation), or from the store,
        # where it was checked when queued. A Python caller checks its own with mtlcore.validate.
        device = resolve_device(config.device) if device is None else torch.device(device)
        data = load_dataset(config.dataset.name, seed=config.dataset.seed, **config.dataset.options)
        return cls(config, data, device)

    # ----- one step ---------------------------------------------------------
    def task_losses(self, x: torch.Tensor, y: dict[str, torch.Tensor],
                    state: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None,
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Forward pass: each task's output and its loss on the batch.

        ``state``: (parameters, buffers) to run the model with instead of its
        own (``torch.func.functional_call``; the diagnostics' lookahead).
        Outputs and losses are float32 whatever the autocast precision.
        """
        with self.speed.autocast():
            raw = self.model(x) if state is None else functional_call(self.model, state, (x,))
        outputs = {t: o.float() for t, o in raw.items()}  # a no-op in float32
        labelled = y.get(LABELLED)
        if labelled is None:
            return outputs, {t: self.loss_fns[t](outputs[t], y[t]) for t in self.specs}
        # Few labels: a task that needs labels averages its loss over the batch's labelled rows only
        # (the gradient of training on those rows alone); the others use every row.
        rows = labelled.nonzero().squeeze(1)
        losses = {}
        for t, spec in self.specs.items():
            if not spec.needs_labels:
                losses[t] = self.loss_fns[t](outputs[t], y[t])
            elif rows.numel():
                losses[t] = self.loss_fns[t](outputs[t][rows], y[t][rows])
            else:  # no labelled row in this batch: no supervised signal, but the graph stays whole
                losses[t] = outputs[t].sum() * 0.0
        return outputs, losses

    def regularisers(self) -> torch.Tensor:
        """L1 on the trunk plus the architecture's own penalty (soft sharing)."""
        extra = self.model.penalty()
        if self.config.reg.l1 > 0:
            extra = extra + self.config.reg.l1 * sum(p.abs().sum() for p in self.model.trunk_parameters())
        return extra

    def train_step(self, x: torch.Tensor, y: dict[str, torch.Tensor], measure: bool = False):
        """One optimisation step; returns outputs, losses and task weights.

        ``measure``: also take the gradient diagnostics, on this step's own
        forward pass before the update (it costs no extra forward pass); their
        logs are then in ``self.diagnostics.latest``.
        """
        if not self.model.training:  # train() visits every module: not on every step
            self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.diagnostics.watching(self.model, active=measure) as seen:
            outputs, losses = self.task_losses(x, y)
        # Each task's gradient, computed at most once and only if someone asks:
        # the diagnostics and a gradient-combination method share them, and a
        # loss-weighting method reuses them instead of back-propagating again.
        gradients = TaskGradients(losses, self.trainable)
        if measure:
            self.diagnostics.measure(self, x, y, losses, seen, step=self.step + 1, gradients=gradients)
        weights = self.weighting.backward(losses, self.model, self.regularisers(), gradients)
        self.optimizer.step()
        if self.weighting.wants_losses_after_step:  # e.g. FAMO: how far this step moved each loss
            self.weighting.after_step(self.losses_after_step(x, y))
        self.step += 1
        return outputs, losses, weights

    @torch.no_grad()
    def losses_after_step(self, x: torch.Tensor, y: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch's losses at the updated parameters: one more forward pass, no gradients.

        In training mode, as the step's own losses were, but on copies of the
        buffers, so BatchNorm's running statistics are not updated twice.
        """
        state = (dict(self.model.named_parameters()), copied_buffers(self.model))
        return self.task_losses(x, y, state)[1]

    def batches(self, split: Split, batch_size: int, shuffle: bool):
        """Index batches of a split that lives on the device.

        A final batch of one sample is dropped while training: BatchNorm
        cannot normalise a single example.
        """
        n = len(split)
        if shuffle and split is self.splits["train"]:
            order = self.epoch_order().to(self.device)
        elif shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if shuffle and idx.numel() < 2:
                break
            yield split.x[idx], {t: v[idx] for t, v in split.y.items()}

    def epoch_order(self) -> torch.Tensor:
        """One epoch's order of training rows: a permutation, of the bootstrap sample for a bagging member.

        Packed training (``mtlcore.packing``) draws each member's order here too, so a member
        sees the same batches packed as alone.
        """
        order = torch.randperm(len(self.splits["train"]), generator=self.generator)
        if self.train_rows is not None:
            order = self.train_rows[order.to(self.train_rows.device)]
        return order

    def steps_per_epoch(self) -> int:
        """Training steps in one epoch (a last batch of one sample is dropped)."""
        n, size = len(self.splits["train"]), self.config.train.batch_size
        return max(1, n // size + (1 if n % size > 1 else 0))

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch() * self.config.train.epochs

    def new_meters(self) -> dict[str, TaskMeter]:
        """One ``TaskMeter`` per task (packed training fills them with its own sums)."""
        return {t: TaskMeter(spec, self.target_stats.get(t, (0.0, 1.0))[1], self.loss_fns[t])
                for t, spec in self.specs.items()}

    def new_split_meter(self) -> SplitMeter:
        """Running sums for every task at once, for one pass through a split."""
        return SplitMeter(self.specs, {t: stats[1] for t, stats in self.target_stats.items()}, self.loss_fns)

    @torch.no_grad()
    def evaluate(self, split_name: str) -> dict[str, dict[str, float]]:
        """Loss and metrics of every task on ``split_name``, in eval mode."""
        self.model.eval()
        meter = self.new_split_meter()
        for x, y in self.batches(self.splits[split_name], EVAL_BATCH, shuffle=False):
            outputs, losses = self.task_losses(x, y)
            meter.update(outputs, y, losses)
        return meter.results()

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to rebuild the model for prediction (plain types + tensors; see mtlcore.checkpoint)."""
        return checkpoint_payload(self)


def labelled_mask(n: int, fraction: float, seed: int) -> torch.Tensor | None:
    """Which of ``n`` training samples keep their labels (bool, N), or None when all do.

    ``round(fraction * n)`` samples (at least one), drawn without replacement by ``seed``.
    """
    if fraction >= 1:
        return None
    keep = max(1, int(round(fraction * n)))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep]] = True
    return mask


def bootstrap_rows(n: int, seed: int) -> torch.Tensor:
    """A bootstrap sample of ``n`` rows: n draws with replacement (Breiman 1996, "Bagging predictors").

    About 63 % of the rows appear at least once; each member of an ensemble draws its own.
    """
    generator = torch.Generator().manual_seed(10_007 + seed)  # not the batch order's stream
    return torch.randint(n, (n,), generator=generator)


def read_losses(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Every task's loss as a float, in one read from the device (one sync, not one per task)."""
    values = torch.stack([v.detach().float() for v in losses.values()]).tolist()
    return dict(zip(losses, values))


def fit(config: ExperimentConfig, callbacks: list[Callback] | tuple[Callback, ...] = (),
        device: torch.device | str | None = None, run: TrainingRun | None = None) -> FitResult:
    """Train ``config`` to the end, to early stopping, to divergence or to cancellation.

    Logs per-task training losses every ``train.log_every`` steps and per-task
    train/validation loss and metric every epoch through ``callbacks``, then
    evaluates on the test split. Reproducible on the CPU for a fixed seed.
    """
    started = time.perf_counter()
    run = run or TrainingRun.create(config, device)
    cfg = run.config
    for cb in callbacks:
        cb.on_fit_start(run)

    status, message = "finished", ""
    best_score, best_state, best_epoch, stale = math.inf, None, 0, 0
    history: list[dict[str, Any]] = []

    for epoch in range(1, cfg.train.epochs + 1):
        run.epoch = epoch
        meter = run.new_split_meter()
        for x, y in run.batches(run.splits["train"], cfg.train.batch_size, shuffle=True):
            for cb in callbacks:  # first: a run held paused here can still be stopped right after
                begin = getattr(cb, "on_step_begin", None)  # a newer hook: a duck-typed callback may lack it
                if begin is not None:
                    begin(run)
            if any(cb.should_stop() for cb in callbacks):
                status, message = "cancelled", f"Cancelled at step {run.step} (epoch {epoch})."
                break
            step = run.step + 1
            logged = step % cfg.train.log_every == 0
            # Diagnostics are measured on logged steps, so they travel with that step's losses.
            measure = logged and cfg.train.diagnostics_every > 0 and step % cfg.train.diagnostics_every == 0
            outputs, losses, weights = run.train_step(x, y, measure=measure)
            meter.update(outputs, y, losses)
            if not logged:
                continue  # nothing read back: the device runs ahead
            values = read_losses(losses)
            diverged = divergence(cfg, values, run.step)
            if diverged is not None:
                status, message = "diverged", diverged
                break
            logs = {
                "step": run.step,
                "epoch": epoch,
                "progress": run.step / run.total_steps,
                "loss": values,
                "weight": weights,
            }
            if measure:
                logs["diagnostics"] = run.diagnostics.latest
            for cb in callbacks:
                cb.on_step_end(run, logs)
        if status != "finished":
            break
        train_metrics = meter.results()
        # Steps that were not logged were not checked: the epoch's mean loss catches them.
        diverged = divergence(cfg, {t: v["loss"] for t, v in train_metrics.items()}, run.step)
        if diverged is not None:
            status, message = "diverged", diverged
            break
        val_metrics = run.evaluate("val")
        run.weighting.end_epoch(epoch, {t: v["loss"] for t, v in train_metrics.items()})
        if run.scheduler is not None:
            run.scheduler.step()
        epoch_logs = {
            "epoch": epoch,
            "step": run.step,
            "lr": run.optimizer.param_groups[0]["lr"],
            "train": train_metrics,
            "val": val_metrics,
        }
        if cfg.train.diagnostics_every:
            epoch_logs["diagnostics"] = run.diagnostics.end_epoch(run)
        history.append(epoch_logs)
        for cb in callbacks:
            cb.on_epoch_end(run, epoch_logs)
        # Early stopping watches the weighted validation loss.
        score = score_from_losses({t: v["loss"] for t, v in val_metrics.items()}, dict(cfg.loss.weights))
        if score < best_score - 1e-6:
            best_score, best_epoch, stale = score, epoch, 0
            if cfg.train.patience:
                best_state = copy.deepcopy(run.model.state_dict())
        else:
            stale += 1
            if cfg.train.patience and stale >= cfg.train.patience:
                message = f"Stopped early after epoch {epoch}: no validation gain for {stale} epochs; kept epoch {best_epoch}."
                break

    if best_state is not None and status == "finished":
        run.model.load_state_dict(best_state)
        run.kept_epoch = best_epoch  # the checkpoint then says which epoch's weights it holds
    summary = end_summary(run, status, message, best_epoch, started)
    result = FitResult(status, summary["message"], summary, run)
    for cb in callbacks:
        cb.on_fit_end(run, result)
    return result
