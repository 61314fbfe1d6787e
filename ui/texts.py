"""Every explanation the app shows, in one place: the Learn page's sections,
the short texts beside Train's controls, and the loss formula.

Sections are plain Markdown with their citations, so a teacher can correct
a sentence here and see it on every page that uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mtlcore.safe_text import tex_text


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # Markdown
    cite: str = ""  # the reference(s), one line each


SECTIONS: dict[str, Section] = {
    "calibration": Section(
        "Calibration and temperature",
        "A classifier is *calibrated* when it is right 80 % of the time on the inputs it is 80 % sure of. "
        "The **expected calibration error** (ECE) sorts the test predictions into 15 bins of confidence and "
        "averages |accuracy − confidence| over the bins, weighted by their size; the **reliability diagram** "
        "draws accuracy against confidence (calibrated = on the diagonal). Networks trained long are often "
        "over-confident. **Temperature scaling** divides every logit by one number T before the softmax: T > 1 "
        "flattens the probabilities, T < 1 sharpens them, and the predicted class never changes. After "
        "training, the lab fits T per task on the validation split (lowest negative log-likelihood) and "
        "reports ECE before and after; Predict uses the fitted T, and its slider lets you try others.",
        "Guo, C., Pleiss, G., Sun, Y., & Weinberger, K. Q. (2017). On Calibration of Modern Neural Networks. ICML.",
    ),
    "uncertainty": Section(
        "Regression that predicts a distribution",
        "With the regression loss `gaussian_nll` a head predicts a mean μ and a log-variance s = log σ² for "
        "each input, and is trained on the Gaussian negative log-likelihood ½·(e^(−s)(y − μ)² + s): where the "
        "targets are noisy the model may say so (large σ) instead of paying the full squared error. Predicting "
        "s rather than σ² keeps the loss finite. The test metrics add the likelihood and the share of targets "
        "inside μ ± 1.645σ, which is about 90 % when the predicted variances are honest; Predict shows "
        "mean ± standard deviation.",
        "Kendall, A., & Gal, Y. (2017). What Uncertainties Do We Need in Bayesian Deep Learning for Computer "
        "Vision? NeurIPS.",
    ),
    "mtl": Section(
        "What multi-task learning is",
        "One model learns **several tasks at once** from the same inputs, for example the *shape*, the "
        "*colour* and the *size* of an object in a picture. The tasks share part of the network, so what "
        "one task learns (edges, blobs, corners) is there for the others too. Related tasks act as extra "
        "training signal and as a regulariser: the shared features must be good for every task, which "
        "makes them less likely to fit noise. Unrelated tasks can get in each other's way instead — that "
        "is *negative transfer*, and telling the two apart is what this lab is for.",
        "Caruana, R. (1997). Multitask Learning. *Machine Learning* 28, 41–75.",
    ),
    "sharing": Section(
        "Hard and soft parameter sharing",
        "**Hard sharing**: one trunk for all tasks and a small head per task. Few parameters, strong "
        "regularisation, and the tasks must agree on one set of features.\n\n"
        "**Soft sharing**: every task has its own network, and a penalty λ‖θᵢ − θⱼ‖² pulls the networks "
        "towards each other. λ = 0 is independent single-task models; a large λ makes them almost one "
        "network. More parameters, but each task may keep features of its own.",
        "Ruder, S. (2017). An Overview of Multi-Task Learning in Deep Neural Networks. arXiv:1706.05098.\n"
        "Duong, L., Cohn, T., Bird, S., Cook, P. (2015). Low Resource Dependency Parsing: Cross-lingual "
        "Parameter Sharing in a Neural Network Parser. *ACL 2015*.",
    ),
    "cross_stitch": Section(
        "Cross-stitch networks",
        "One column per task, and after each block a small learned matrix α — the cross-stitch unit — "
        "mixes the columns' features: task i's next layer sees αᵢᵢ·(its own features) + αᵢⱼ·(task j's). "
        "The network learns *how much* to share at each depth instead of you fixing it.",
        "Misra, I., Shrivastava, A., Gupta, A., Hebert, M. (2016). Cross-stitch Networks for Multi-task "
        "Learning. *CVPR 2016*.",
    ),
    "mmoe": Section(
        "Multi-gate mixture of experts (MMoE)",
        "Several shared *experts* (small networks) each compute features; every task has its own *gate* "
        "that looks at the input and chooses a weighted mix of the experts. Closely related tasks end up "
        "using the same experts, loosely related tasks different ones — which is why MMoE copes better "
        "than hard sharing when the task correlation is low (try the synthetic dataset's correlation slider).",
        "Ma, J., Zhao, Z., Yi, X., Chen, J., Hong, L., Chi, E. H. (2018). Modeling Task Relationships in "
        "Multi-task Learning with Multi-gate Mixture-of-Experts. *KDD 2018*.",
    ),
    "loss": Section(
        "The multi-task loss and its weights",
        "Training minimises one number made of every task's loss:\n\n"
        "$$\\mathcal{L}_{\\text{total}} = \\sum_t w_t\\,\\mathcal{L}_t + \\text{regularisers}$$\n\n"
        "A classification task uses cross-entropy, a regression task the mean squared error of its "
        "standardised target. The weight wₜ (your slider) says how much task t counts: raising it pulls "
        "the shared features towards that task, usually at the others' expense. Weight 0 switches a task's "
        "training off while it is still measured. Weighting methods choose or adapt the weights for you.",
        "Kendall, A., Gal, Y., Cipolla, R. (2018). Multi-Task Learning Using Uncertainty to Weigh Losses for "
        "Scene Geometry and Semantics. *CVPR 2018* (why hand-tuned weights matter).",
    ),
    "weight_decay": Section(
        "Weight decay",
        "Shrinks every weight a little at each step (an L2 penalty λ‖θ‖²), which prefers simple, smooth "
        "models and reduces over-fitting. Typical values: 1e-5 to 1e-3.",
        "Krogh, A., Hertz, J. A. (1992). A Simple Weight Decay Can Improve Generalization. *NeurIPS 1991*.",
    ),
    "l1": Section(
        "L1 penalty on the shared parameters",
        "Adds λ₁‖θ_shared‖₁ to the loss, which drives many shared weights to exactly zero: the tasks must "
        "share a *sparse* set of features. Start tiny (1e-6 to 1e-4); large values stop learning altogether.",
        "Tibshirani, R. (1996). Regression Shrinkage and Selection via the Lasso. *J. R. Stat. Soc. B* 58, 267–288.",
    ),
    "dropout": Section(
        "Dropout",
        "During training, each hidden unit is switched off at random with probability p, so no unit can "
        "rely on a few others; at test time all units are used. p = 0.1–0.3 is a good start.",
        "Srivastava, N., Hinton, G., Krizhevsky, A., Sutskever, I., Salakhutdinov, R. (2014). Dropout: A Simple "
        "Way to Prevent Neural Networks from Overfitting. *JMLR* 15, 1929–1958.",
    ),
    "batchnorm": Section(
        "Batch normalisation",
        "Normalises each layer's activations over the batch, which makes training faster and less sensitive "
        "to the learning rate. Turn it off to see how much it helps.",
        "Ioffe, S., Szegedy, C. (2015). Batch Normalization: Accelerating Deep Network Training by Reducing "
        "Internal Covariate Shift. *ICML 2015*.",
    ),
    "early_stopping": Section(
        "Early stopping",
        "Watch the (weighted) validation loss after every epoch and stop when it has not improved for "
        "*patience* epochs; the best epoch's weights are kept. A regulariser that costs nothing.",
        "Prechelt, L. (1998). Early Stopping — But When? In *Neural Networks: Tricks of the Trade*, 55–69.",
    ),
    "negative_transfer": Section(
        "Negative transfer and Δm",
        "Sharing helps only if the tasks are related. When a task gets *worse* trained together with others "
        "than trained alone with the same settings, that is **negative transfer** (try adding the shapes "
        "dataset's *background* task, which has nothing to do with the object).\n\n"
        "Δm summarises a multi-task model against single-task baselines as the average relative change "
        "of every task's metric M:\n\n"
        "$$\\Delta_m = \\frac{1}{T}\\sum_{t=1}^{T} (-1)^{\\delta_t}\\,"
        "\\frac{M_{\\text{MTL},t} - M_{\\text{STL},t}}{M_{\\text{STL},t}} \\times 100\\%$$\n\n"
        "with δₜ = 1 when a higher metric is better (accuracy) and 0 when lower is better (error). With this "
        "sign, **a negative Δm means multi-task learning helped** on average; the Compare page also says it "
        "in words per task.\n\n"
        "Maninis et al. (2019) defined Δm with the opposite sign (their exponent is 1 when *lower* is better, "
        "so positive meant multi-task better); Nash-MTL (Navon et al., 2022) flipped it to the form above, and "
        "this lab uses Nash-MTL's sign. LibMTL and Auto-Lambda report the original sign (positive = better), "
        "and LibMTL's default baseline is the run itself after its first epoch, not single-task training: "
        "flip the sign, and check the baseline, before comparing their numbers with these.",
        "Maninis, K.-K., Radosavovic, I., Kokkinos, I. (2019). Attentive Single-Tasking of Multiple Tasks. *CVPR 2019* "
        "(defines Δm).\n"
        "Navon, A. et al. (2022). Multi-Task Learning as a Bargaining Game. *ICML 2022* (the sign used here).\n"
        "Liu, S., James, S., Davison, A. J., Johns, E. (2022). Auto-Lambda: Disentangling Dynamic Task Relationships. "
        "*TMLR* (the original sign).\n"
        "Standley, T. et al. (2020). Which Tasks Should Be Learned Together in Multi-task Learning? *ICML 2020*.",
    ),
    "conflict": Section(
        "Gradient conflict",
        "Each task's loss has a gradient gₜ on the shared parameters: the direction that task wants them to "
        "move. Two tasks **conflict** when their gradients point against each other, cos(gᵢ, gⱼ) < 0: a "
        "step that helps one then hurts the other. The Train page measures the cosines every k steps "
        "(*Gradient diagnostics*); red cells and a high share of conflicting steps are a warning sign. "
        "Methods such as PCGrad remove the conflicting part of each gradient.",
        "Yu, T., Kumar, S., Gupta, A., Levine, S., Hausman, K., Finn, C. (2020). Gradient Surgery for "
        "Multi-Task Learning. *NeurIPS 2020*.",
    ),
    "affinity": Section(
        "Task affinity",
        "Take a small step on task i alone and see how task j's loss changes: "
        "Z(i→j) = 1 − Lⱼ(after) / Lⱼ(before). **Z > 0 (blue): training i helps j; Z < 0 (red): it hurts.** "
        "Averaged over training, these numbers suggest which tasks to train together.",
        "Fifty, C., Amid, E., Zhao, Z., Yu, T., Anil, R., Finn, C. (2021). Efficiently Identifying Task "
        "Groupings for Multi-Task Learning. *NeurIPS 2021*.",
    ),
    "weighting": Section(
        "Weighting methods",
        "Instead of fixing the weights by hand, a *weighting method* chooses them during training, from "
        "the losses (uncertainty, DWA, FAMO...) or from the tasks' gradients on the shared parameters "
        "(MGDA, PCGrad, UPGrad...). Gradient methods need shared parameters, so they do not work with soft "
        "sharing, and they need at least two tasks.",
        "Vandenhende, S. et al. (2021). Multi-Task Learning for Dense Prediction Tasks: A Survey. *IEEE TPAMI* 44(7).",
    ),
}

# The order of the Learn page.
LEARN_ORDER = ("mtl", "sharing", "cross_stitch", "mmoe", "loss", "weight_decay", "l1", "dropout", "batchnorm",
               "early_stopping", "negative_transfer", "conflict", "affinity", "weighting", "calibration",
               "uncertainty")

# Which section explains each architecture (the Train page's "learn more").
ARCH_SECTION = {"hard": "sharing", "soft": "sharing", "single": "mtl", "cross_stitch": "cross_stitch", "mmoe": "mmoe"}

# ----- short help texts (tooltips) ------------------------------------------------------
HELP = {
    "owner": "Your name labels the runs you start. Everyone's runs are visible to all, but only the browser "
             "that started a run (its private key, below) or the teacher can stop or delete it.",
    "dataset": "The data the model learns from. Every dataset has several tasks, predicted from the same input.",
    "weight": "How much this task's loss counts in the total: 0 switches its training off, 1 is neutral, "
              "5 makes it dominate the shared features.",
    "weighting": "How the per-task losses are combined into one update. 'static' uses your sliders as they are.",
    "arch": "How the tasks share the network: one shared trunk (hard), a network each tied by a penalty (soft), "
            "learned mixing (cross-stitch), gated experts (MMoE), or one task alone (single).",
    "optimiser": "The update rule. Adam works well without tuning; SGD needs a larger learning rate.",
    "lr": "Step size of the optimiser (log scale). Too large and training diverges; too small and it crawls.",
    "epochs": "Passes over the training data. More epochs train longer (and may over-fit).",
    "batch_size": "Examples per training step. Smaller batches mean more, noisier steps per epoch.",
    "seed": "Random seed of the model's initialisation and of the batch order: same seed, same result.",
    "diagnostics": "Every k training steps, measure how the tasks' gradients agree (cosine) and how a step on one "
                   "task changes the others' losses (affinity). 0 switches it off; it slows training a little.",
    "weight_decay": "L2 penalty on all weights, applied by the optimiser. 0 switches it off.",
    "l1": "L1 penalty λ₁‖θ_shared‖₁ on the shared parameters; pushes them to exactly zero. 0 switches it off.",
    "dropout": "Probability of switching off each hidden unit during training. 0 switches it off.",
    "batchnorm": "Normalise activations over each batch (BatchNorm) inside the trunk.",
    "soft_lambda": "Strength λ of the penalty that pulls the tasks' networks together (soft sharing only). "
                   "0 = independent networks.",
    "patience": "Stop when the weighted validation loss has not improved for this many epochs, keeping the best "
                "epoch. 0 = always train every epoch.",
    "label": "A name for this run, shown in lists and on the Compare page (e.g. 'shape+color, w=2').",
    "start": "Queue this configuration; a background worker trains it and the charts below update live.",
    "stop": "Stop this run; the metrics logged so far are kept.",
    "num_experts": "How many shared experts the gates choose from (MMoE only).",
    "width": "Channels of the first convolution block, or hidden units of the MLP. Wider = more capacity, slower.",
    "trunk": "The shared feature extractor: auto picks a small CNN for images and an MLP for vectors.",
    "schedule": "How the learning rate changes over the epochs: constant, cosine decay, or halving in steps.",
    "momentum": "Momentum of SGD and RMSprop (ignored by Adam-style optimisers).",
    "regression": ("Loss of regression tasks: squared error (mse), absolute error (l1), huber (between the two), "
                   "or gaussian_nll: the head predicts a mean and a variance (Kendall & Gal 2017), and Predict "
                   "shows mean ± standard deviation."),
    "label_smoothing": "Classification: train towards slightly softened targets; a mild regulariser. 0 = off.",
    "focal_gamma": "Classification: focal loss down-weights easy examples; 0 = plain cross-entropy.",
    "max_samples": "Train on at most this many training examples (0 = all): fewer is faster but over-fits sooner.",
    "label_fraction": "Only this fraction of the training examples keeps its labels: the supervised tasks' loss "
                      "ignores the others, while the reconstruction task (which needs no labels) learns from "
                      "every image. With few labels, that auxiliary task can help the shared trunk.",
    "reopen": "Open one of your earlier runs: its charts and results, and its settings in the controls.",
}


def option_label(name: str) -> str:
    """ "n_samples" -> "N samples" (a dataset option's widget label)."""
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


# ----- the loss formula ------------------------------------------------------------------

def _tex_name(task: str) -> str:
    return r"\text{" + tex_text(task) + "}"  # a task name from an imported CSV may hold any character


def loss_formula(tasks: Sequence[str], weights: Mapping[str, float], kinds: Mapping[str, str],
                 method: str = "static", arch: str = "hard", reg: Any = None) -> str:
    """LaTeX of the total loss with the current weights filled in, one term per line.

    ``kinds``: task -> "classification" | "regression"; ``reg``: the config's
    ``reg`` section (or None) for the penalty terms that are switched on.
    """
    terms = []
    for t in tasks:
        w = 1.0 if method == "equal" else float(weights.get(t, 1.0))
        if method in ("static", "equal"):
            coef = "" if w == 1 else f"{w:g}" + r"\,"
        else:  # the method's weight w_t, times the slider when it is not 1
            coef = ("" if w == 1 else f"{w:g}" + r"\,") + r"w_{" + _tex_name(t) + r"}\,"
        loss = r"\mathrm{CE}" if kinds.get(t) == "classification" else r"\mathrm{MSE}"
        terms.append(coef + r"\underbrace{\mathcal{L}_{" + _tex_name(t) + r"}}_{" + loss + "}")
    if reg is not None:
        if getattr(reg, "l1", 0):
            terms.append(f"{reg.l1:g}" + r"\,\lVert\theta_{\text{shared}}\rVert_1")
        if arch == "soft" and len(tasks) > 1 and getattr(reg, "soft_lambda", 0):
            norm = r"\lVert\theta_i-\theta_j\rVert_2^2" if reg.soft_norm == "l2" else r"\lVert\theta_i-\theta_j\rVert_1"
            terms.append(f"{reg.soft_lambda:g}" + r"\sum_{i<j}" + norm)
        if getattr(reg, "weight_decay", 0):
            terms.append(f"{reg.weight_decay:g}" + r"\,\lVert\theta\rVert_2^2")
    if not terms:
        terms = ["0"]
    lines = [r"\mathcal{L}_{\text{total}} &= " + terms[0]] + [r"&\quad + " + term for term in terms[1:]]
    return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"


def formula_note(method: str, combines_gradients: bool = False) -> str:
    """One sentence under the formula saying where the weights come from."""
    if method == "static":
        return ("The numbers are your slider weights; they stay fixed during training unless you steer the "
                "running model from its live panel.")
    if method == "equal":
        return "The 'equal' method ignores the sliders: every task counts 1."
    if combines_gradients:
        return (f"'{method}' does not add up this loss: it combines the tasks' gradients on the shared layers "
                "(each scaled by its slider), and wₜ is the share it gives task t at each step — see "
                "'Task weights over time'.")
    return (f"wₜ is chosen by the '{method}' method as training goes (your slider multiplies it); "
            "watch the 'Task weights over time' chart.")
