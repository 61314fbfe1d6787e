"""The template of "Show the code": a standalone PyTorch training script for one run.

``mtlcore.export.script.render_script`` fills the ``$names`` below
(``string.Template``) with a run's settings and joins the pieces: the header,
the settings, the trunk the run used (a CNN or an MLP), and the rest (heads,
losses, metrics, the training loop), which is the same for every run. The
script needs PyTorch only; it mirrors ``mtlcore.models`` (trunks.py, hard.py),
``mtlcore.losses``, ``mtlcore.metrics`` and ``mtlcore.engine`` in plain,
short form, so a student can read the whole of one run in one sitting.
"""
from __future__ import annotations

from string import Template

HEADER = Template('''\
"""$title

Written by MTL Lab (python -m mtlcore export --script) from run $run.
It needs PyTorch only, not MTL Lab. Train it on the run's data, exported
beside it as a tensor file:

    python $script_name --data $data_name            # the run's $epochs epochs
    python $script_name --data $data_name --epochs 1

What it does, in order: rebuild the run's model ($architecture),
the loss of each task with the weights you chose, the optimiser and the
training loop; then print every task's test metric, which matches the lab's
result within seed noise (the lab may train in bfloat16 and in another
memory layout).

This generator covers hard parameter sharing (one trunk, one head per task;
Caruana 1997) and single-task runs, with static or equal loss weights, a CNN
or an MLP trunk, and no early stopping.
"""
import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn
''')

SETTINGS = Template('''

# ----- the run's settings ----------------------------------------------------------
# Each task: its kind, and its number of classes (0 for regression).
TASKS = $tasks
LOSS_WEIGHTS = $weights  # the loss of task t is multiplied by LOSS_WEIGHTS[t]
REGRESSION_LOSS = $regression  # mse, l1, huber or gaussian_nll
LABEL_SMOOTHING = $label_smoothing
FOCAL_GAMMA = $focal_gamma  # 0: plain cross-entropy
WIDTH = $width  # channels of the first conv block / half the MLP's hidden units
BATCHNORM = $batchnorm
DROPOUT = $dropout
OPTIMISER = $optimiser
LR = $lr
MOMENTUM = $momentum  # sgd and rmsprop only
WEIGHT_DECAY = $weight_decay
L1 = $l1  # L1 penalty on the trunk's parameters
SCHEDULE = $schedule  # none, cosine or step
STEP_SIZE, GAMMA = $step_size, $gamma  # the step schedule
EPOCHS = $epochs
BATCH_SIZE = $batch_size
SEED = $seed
''')

CNN_TRUNK = '''

# ----- the model: a small CNN trunk shared by every task ------------------------------
def conv_block(c_in, c_out):
    """conv 3x3 -> (BatchNorm) -> ReLU -> 2x2 max-pool: halves the image side."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not BATCHNORM)]
    if BATCHNORM:
        layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers, nn.ReLU(inplace=True), nn.MaxPool2d(2))


def make_trunk(input_shape):
    """Up to three conv blocks, then the feature map is flattened (positions matter) into 4 x WIDTH features."""
    channels, height, width_px = input_shape
    side = min(height, width_px)
    n_blocks = max(1, min(3, int(math.log2(side)) - 1))  # 8 px -> 2 blocks, 32 px -> 3
    blocks, c_in = [], channels
    for i in range(n_blocks):
        c_out = WIDTH * min(2 ** i, 2)
        blocks.append(conv_block(c_in, c_out))
        c_in = c_out
    final_side = min(4, side // 2 ** n_blocks)
    map_size = (height // 2 ** n_blocks, width_px // 2 ** n_blocks)
    pool = nn.Identity() if map_size == (final_side, final_side) else nn.AdaptiveAvgPool2d(final_side)
    hidden = 4 * WIDTH
    tail = [pool, nn.Flatten(), nn.Linear(c_in * final_side * final_side, hidden), nn.ReLU(inplace=True)]
    if DROPOUT > 0:
        tail.append(nn.Dropout(DROPOUT))
    return nn.Sequential(*blocks, nn.Sequential(*tail)), hidden
'''

MLP_TRUNK = '''

# ----- the model: an MLP trunk shared by every task ------------------------------------
def make_trunk(input_shape, layers=2):
    """Two fully connected layers of 2 x WIDTH units, each Linear -> (BatchNorm) -> ReLU (-> Dropout)."""
    in_features = math.prod(input_shape)
    hidden = 2 * WIDTH
    stages = []
    for i in range(layers):
        block = [nn.Flatten()] if i == 0 else []
        block.append(nn.Linear(in_features if i == 0 else hidden, hidden))
        if BATCHNORM:
            block.append(nn.BatchNorm1d(hidden))
        block.append(nn.ReLU(inplace=True))
        if DROPOUT > 0:
            block.append(nn.Dropout(DROPOUT))
        stages.append(nn.Sequential(*block))
    return nn.Sequential(*stages), hidden
'''

BODY = '''

def output_size(task):
    """Classes for classification; one value for regression (two: mean and log-variance for gaussian_nll)."""
    if TASKS[task]["kind"] == "classification":
        return TASKS[task]["classes"]
    return 2 if REGRESSION_LOSS == "gaussian_nll" else 1


def make_head(in_features, out_features):
    """A task's own head: one hidden layer, then the task's outputs."""
    hidden = max(16, in_features // 2)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))


class HardSharing(nn.Module):
    """One shared trunk computes features for every task; each task has a small head of its own."""

    def __init__(self, input_shape):
        super().__init__()
        self.trunk, features = make_trunk(input_shape)
        self.heads = nn.ModuleDict({t: make_head(features, output_size(t)) for t in TASKS})

    def forward(self, x):
        features = self.trunk(x)
        return {t: head(features) for t, head in self.heads.items()}


# ----- the losses: one per task, then their weighted sum ---------------------------------
def task_loss(task, output, target):
    if TASKS[task]["kind"] == "classification":
        if FOCAL_GAMMA > 0:  # focal loss (Lin et al. 2017): -(1 - p_t)^gamma log p_t
            log_p = F.log_softmax(output, dim=-1)
            ce = F.nll_loss(log_p, target, reduction="none")
            if LABEL_SMOOTHING > 0:
                ce = (1 - LABEL_SMOOTHING) * ce - LABEL_SMOOTHING * log_p.mean(dim=-1)
            p_true = log_p.gather(1, target.unsqueeze(1)).squeeze(1).exp()
            return ((1 - p_true) ** FOCAL_GAMMA * ce).mean()
        return F.cross_entropy(output, target, label_smoothing=LABEL_SMOOTHING)
    if REGRESSION_LOSS == "gaussian_nll":  # Kendall & Gal 2017: mean and log-variance s
        mu, s = output[:, 0], output[:, 1]
        return 0.5 * (torch.exp(-s) * (target - mu) ** 2 + s).mean()
    loss = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}[REGRESSION_LOSS]
    return loss(output[:, 0], target)


def total_loss(model, outputs, y):
    """sum_t w_t L_t, plus the L1 penalty on the trunk."""
    losses = {t: task_loss(t, outputs[t], y[t]) for t in TASKS}
    total = sum(LOSS_WEIGHTS[t] * losses[t] for t in TASKS)
    if L1 > 0:
        total = total + L1 * sum(p.abs().sum() for p in model.trunk.parameters())
    return total, losses


# ----- the optimiser and its schedule ------------------------------------------------------
def make_optimiser(params):
    kwargs = {"lr": LR, "weight_decay": WEIGHT_DECAY}
    if OPTIMISER in ("sgd", "rmsprop"):
        kwargs["momentum"] = MOMENTUM
    factory = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad}[OPTIMISER]
    return factory(params, **kwargs)


def make_schedule(optimiser, epochs):
    if SCHEDULE == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    if SCHEDULE == "step":
        return torch.optim.lr_scheduler.StepLR(optimiser, STEP_SIZE, GAMMA)
    return None


# ----- metrics: accuracy, or the mean absolute error in the target's own units -------------
@torch.no_grad()
def evaluate(model, x, y, target_stats, batch=1024):
    model.eval()
    outputs = {t: [] for t in TASKS}
    for start in range(0, len(x), batch):
        for t, out in model(x[start:start + batch]).items():
            outputs[t].append(out)
    metrics = {}
    for t in TASKS:
        out = torch.cat(outputs[t])
        if TASKS[t]["kind"] == "classification":
            metrics[t] = {"accuracy": (out.argmax(dim=-1) == y[t]).float().mean().item()}
        else:  # targets were standardised with the training split's (mean, std)
            std = target_stats[t][1]
            metrics[t] = {"mae": (out[:, 0] - y[t]).abs().mean().item() * std}
    return metrics


# ----- the training loop ---------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description="Train the exported MTL Lab run with plain PyTorch.")
    parser.add_argument("--data", required=True, help="the tensor file exported with this script")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs to train (the run's: {EPOCHS})")
    args = parser.parse_args()
    data = torch.load(args.data, weights_only=True)
    x_train, y_train = data["train"]["x"], data["train"]["y"]

    torch.manual_seed(SEED)
    model = HardSharing(tuple(x_train.shape[1:]))
    optimiser = make_optimiser(model.parameters())
    schedule = make_schedule(optimiser, args.epochs)
    order = torch.Generator().manual_seed(SEED)  # the order of the batches

    for epoch in range(1, args.epochs + 1):
        model.train()
        permutation = torch.randperm(len(x_train), generator=order)
        for start in range(0, len(x_train), BATCH_SIZE):
            idx = permutation[start:start + BATCH_SIZE]
            if len(idx) < 2:
                break  # BatchNorm cannot normalise a batch of one example
            outputs = model(x_train[idx])
            total, losses = total_loss(model, outputs, {t: v[idx] for t, v in y_train.items()})
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
        if schedule is not None:
            schedule.step()
        val = evaluate(model, data["val"]["x"], data["val"]["y"], data["target_stats"])
        print(f"epoch {epoch}: val " + ", ".join(f"{t} {m} {v:.4f}" for t, r in val.items() for m, v in r.items()))

    test = evaluate(model, data["test"]["x"], data["test"]["y"], data["target_stats"])
    print("test " + ", ".join(f"{t} {m} {v:.4f}" for t, r in test.items() for m, v in r.items()))


if __name__ == "__main__":
    main()
'''
