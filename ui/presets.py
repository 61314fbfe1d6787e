"""Ready-made experiments for the Home page: each trains in under a minute on a laptop CPU.

A preset is a set of flat configuration keys (as in the URL), so the Home
page opens Train with ``?key=value...`` and a teacher can share the link.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    title: str
    blurb: str  # what to look at, one or two sentences
    settings: dict[str, str] = field(default_factory=dict)  # flat config keys
    label: str = ""  # the run's label on Train


PRESETS: tuple[Preset, ...] = (
    Preset(
        # Measured (python -m mtlcore study stl-vs-mtl with these settings, 3 seeds, laptop CPU): together,
        # shape 80.1 % ± 10.3 vs 90.2 % ± 4.7 alone, size MAE 0.54 ± 0.06 vs 0.49 ± 0.03, colour 100 % both;
        # Δm = +7.6 % (negative transfer). The title once said "sharing helps".
        "Shape + colour + size: does sharing help? Here it hurts",
        "Three tasks on one shared trunk. Over 3 seeds on a laptop CPU, training them together cost *shape* "
        "about 10 points of accuracy and *size* about 12 % more error than training each alone (colour is "
        "perfect either way). Press Start, then train the single-task baselines on Compare and check; "
        "raise the weight of *shape* and see whether it wins its points back.",
        {"dataset.name": "shapes", "tasks": "shape,color,size", "model.arch": "hard", "train.epochs": "8"},
        "shapes: shape+color+size",
    ),
    Preset(
        # Measured (3 seeds, laptop CPU): shape 70.7 % ± 4.1 together vs 90.2 % ± 4.7 alone, beyond the
        # seed-to-seed spread; Δm = +6.4 %. Shape also loses more here than with size (80.1 %).
        "Add the background task: negative transfer",
        "The background pattern has nothing to do with the object. Train it together with shape and "
        "colour and compare shape's accuracy with the first preset — or with a single-task baseline on Compare.",
        {"dataset.name": "shapes", "tasks": "shape,color,background", "model.arch": "hard",
         "train.epochs": "8", "train.diagnostics_every": "10"},
        "shapes: + background",
    ),
    Preset(
        "Synthetic tasks: move the correlation slider",
        "Two regression tasks whose relatedness you choose (correlation 0.5 here); a run takes seconds. "
        "Train with hard sharing, then with MMoE, then try correlation 0.9 and 0 — and put the runs side by "
        "side on Compare (error: lower is better).",
        {"dataset.name": "synthetic", "tasks": "task_a,task_b", "dataset.correlation": "0.5",
         "model.arch": "hard", "train.epochs": "20"},
        "synthetic: corr 0.5, hard",
    ),
    Preset(
        # Measured (3 seeds, laptop CPU): digit 98.4 % ± 0.9 together vs 98.6 % ± 0.2 alone, parity 98.6 %
        # vs 98.4 %; Δm = -0.0 % ± 1.2, within noise. The blurb once promised that they "should help".
        "Digits: digit + parity, related but no gain",
        "Handwritten digits: recognise the digit and whether it is even. Parity is a function of the digit, "
        "so you might expect the tasks to help each other; over 3 seeds they do not: both reach about 98.5 % "
        "alone and together, within the seed-to-seed noise. When each task is easy, sharing has little to give.",
        {"dataset.name": "digits", "tasks": "digit,parity", "model.arch": "hard", "train.epochs": "10"},
        "digits: digit+parity",
    ),
    # Measured (digits, hard sharing, 10 epochs, test accuracy of digit, mean ± std over seeds): with 5 % of
    # the labels, 72.5 ± 3.4 % alone and 74.8 ± 4.2 % with the reconstruction task (8 seeds; the gain,
    # +2.2 points, is smaller than the seed-to-seed spread); with every label 98.8 ± 0.6 % and 98.8 ± 0.2 %
    # (3 seeds). On shapes (3 seeds) the shape task went from 35.1 ± 4.3 % to 36.9 ± 2.3 % with 5 % of
    # the labels, and from 96.4 ± 0.8 % to 93.9 ± 3.5 % with every label (a cost, within the spread).
    Preset(
        "Few labels: a reconstruction task adds about 2 points, within seed noise",
        "Only 5 % of the digits keep their labels; the reconstruction task (an autoencoder on the shared "
        "trunk) learns from every image. Train it, then untick *reconstruction* and train again, and move "
        "the labelled fraction to 1: with few labels the auxiliary task gained about 2 points on average, "
        "less than changing the seed moves the result; with every label it changed nothing here (and on "
        "shapes it cost about 2 points).",
        {"dataset.name": "digits", "tasks": "digit,reconstruction", "model.arch": "hard", "train.epochs": "10",
         "train.label_fraction": "0.05"},
        "digits: 5% labels + reconstruction",
    ),
)
