"""One experiment's configuration: a tree of frozen dataclasses.

The whole tree is saved next to every result (``config.json``), round-trips
through JSON (``to_dict`` / ``from_dict``) and through flat ``key=value`` pairs
(``to_flat`` / ``from_flat``), which is what ``--set`` on the command line and
the app's URL query parameters use:

    dataset.name=shapes  tasks=shape,color  model.arch=hard  loss.weights.shape=2

``validate`` checks a config against the dataset registry and raises a
``ConfigError`` whose message names the setting and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """An impossible or unknown setting; the message says what is allowed."""


@dataclass(frozen=True)
class DatasetConfig:
    name: str = "shapes"
    seed: int = 0  # seed of the generated data and of the split (the run's own seed is ``seed``)
    # Dataset-specific options (see ``python -m mtlcore datasets``), e.g.
    # {"n_samples": 3000} for shapes or {"correlation": 0.5} for synthetic.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "hard"  # hard, soft, cross_stitch, mmoe, single
    trunk: str = "auto"  # auto (cnn for images, mlp for vectors), cnn, mlp, resnet18
    width: int = 32  # channels of the first conv block / hidden units of the MLP
    num_experts: int = 4  # MMoE only
    # The MLP trunk (vector inputs): hidden layers, and units per layer (0 = 2 x width). Ma et al.'s
    # matched budget (MMoE, KDD 2018, section 4.3) is one layer of 113 units for the shared bottom
    # against 8 experts of one 16-unit layer (expert_hidden, 0 = as the trunk), towers of 8 (head_hidden,
    # 0 = half the features, at least 16).
    layers: int = 2
    hidden: int = 0
    expert_hidden: int = 0
    head_hidden: int = 0


@dataclass(frozen=True)
class LossConfig:
    # Per-task loss weights (the sliders); a task not listed gets 1.0.
    weights: dict[str, float] = field(default_factory=dict)
    regression: str = "mse"  # mse, l1, huber, gaussian_nll (a mean and a variance)
    label_smoothing: float = 0.0
    focal_gamma: float = 0.0  # 0 = plain cross-entropy; > 0 = focal loss


@dataclass(frozen=True)
class WeightingConfig:
    method: str = "static"  # see mtlcore.weighting.WEIGHTINGS
    # Method-specific options, e.g. {"temperature": 2.0} for dwa.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # sgd, adam, adamw, rmsprop, adagrad
    lr: float = 0.003
    momentum: float = 0.9  # sgd and rmsprop
    schedule: str = "none"  # none, cosine, step
    step_size: int = 5  # epochs between decays of the step schedule
    gamma: float = 0.5  # decay factor of the step schedule


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    max_samples: int = 0  # 0 = all; else at most this many training samples
    patience: int = 0  # early stopping: epochs without validation gain; 0 = off
    log_every: int = 1  # steps between logged training losses
    diagnostics_every: int = 0  # steps between gradient diagnostics; 0 = off
    diagnostics_cosine: str = "exact"  # exact (shared parameters) or features (cheaper, approximate); see diagnostics.py
    precision: str = "auto"  # auto (bfloat16 where native and it pays), float32, bfloat16; see mtlcore/speed.py
    # Few labels: only this fraction of the training samples keeps its labels for the supervised
    # tasks (their loss ignores the rest); tasks that need no labels (reconstruction) see every sample.
    label_fraction: float = 1.0
    # Bagging (Breiman 1996): train on a bootstrap sample of the training split (n draws with
    # replacement, seeded by the run's seed); an ensemble member (mtlcore.ensemble).
    bootstrap: bool = False


@dataclass(frozen=True)
class RegConfig:
    weight_decay: float = 0.0
    l1: float = 0.0  # L1 penalty on the shared parameters
    dropout: float = 0.0
    batchnorm: bool = True
    soft_lambda: float = 0.01  # soft sharing: strength of the tie between columns
    soft_norm: str = "l2"  # soft sharing: l2 (squared distance) or l1


@dataclass(frozen=True)
class ExperimentConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    tasks: tuple[str, ...] = ("shape", "color", "size")
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    seed: int = 0
    device: str = "auto"  # auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps

    # ----- conversions -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True) -> "ExperimentConfig":
        """Build from plain data; ``strict=False`` skips settings this version
        does not know (a config stored by an older or newer MTL Lab)."""
        return _from_plain(cls, data, prefix="", strict=strict)

    @classmethod
    def from_json(cls, text: str, strict: bool = True) -> "ExperimentConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"The configuration is not valid JSON: {error}.") from None
        except RecursionError:  # "[[[[...]]]]" thousands deep: the parser gives up, so do we
            raise ConfigError("The configuration is nested too deeply to read; a config.json is an object "
                              "of sections a few levels deep.") from None
        if not isinstance(data, dict):
            raise ConfigError("The configuration must be a JSON object.")
        return cls.from_dict(data, strict=strict)

    def to_flat(self) -> dict[str, str]:
        """Flat ``{"dotted.key": "text"}`` pairs; only settings that differ
        from the defaults are included, so shared links stay short."""
        default = _flatten(ExperimentConfig().to_dict())
        flat = _flatten(self.to_dict())
        return {k: v for k, v in flat.items() if default.get(k) != v}

    @classmethod
    def from_flat(cls, pairs: dict[str, Any], base: "ExperimentConfig | None" = None) -> "ExperimentConfig":
        """Apply ``{"dotted.key": value}`` pairs to ``base`` (default config)."""
        config = base or cls()
        for key, value in pairs.items():
            config = set_key(config, key, value)
        return config

    def with_updates(self, **changes: Any) -> "ExperimentConfig":
        return replace(self, **changes)

    def weight(self, task: str) -> float:
        """The user's loss weight of ``task`` (1.0 when not set)."""
        return float(self.loss.weights.get(task, 1.0))


# ----- flat keys -------------------------------------------------------------

# Sections whose dict field takes arbitrary sub-keys: "dataset.correlation"
# means dataset.options["correlation"], "loss.weights.shape" means
# loss.weights["shape"], "weighting.temperature" means weighting.options[...].
_OPEN_DICTS = {"dataset": "options", "weighting": "options"}


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``KEY=VALUE`` (as given to ``--set``) into its two parts."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r} (for example model.arch=hard).")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def set_key(config: ExperimentConfig, key: str, value: Any) -> ExperimentConfig:
    """Return ``config`` with the dotted ``key`` set to ``value``.

    ``value`` may be text (from a command line or URL); it is converted to the
    field's type. An unknown key raises a ConfigError listing valid keys.
    """
    parts = key.split(".")
    head = parts[0]
    top = {f.name: f for f in fields(ExperimentConfig)}
    if head not in top:
        raise ConfigError(f"Unknown setting {key!r}; valid settings start with: {', '.join(top)}.")
    hints = get_type_hints(ExperimentConfig)
    if len(parts) == 1:
        if is_dataclass(hints[head]):
            raise ConfigError(f"Setting {key!r} needs a sub-key, e.g. {head}.{fields(hints[head])[0].name}.")
        return replace(config, **{head: _convert(value, hints[head], key)})
    section = getattr(config, head)
    if not is_dataclass(section):
        raise ConfigError(f"Setting {head!r} has no sub-keys; use {head}=VALUE.")
    sub_hints = get_type_hints(type(section))
    name = parts[1]
    if name in sub_hints:
        takes_entries = _is_dict(sub_hints[name])
        if len(parts) == 2 and not takes_entries:
            new_section = replace(section, **{name: _convert(value, sub_hints[name], key)})
            return replace(config, **{head: new_section})
        if len(parts) == 2:
            raise ConfigError(f"Setting {key!r} needs a sub-key, e.g. {key}.NAME=VALUE.")
        if len(parts) == 3 and takes_entries:
            mapping = dict(getattr(section, name))
            mapping[parts[2]] = _convert(value, float, key) if name == "weights" else _auto(value)
            return replace(config, **{head: replace(section, **{name: mapping})})
    elif head in _OPEN_DICTS and len(parts) == 2:
        # "dataset.correlation" is short for "dataset.options.correlation".
        dict_field = _OPEN_DICTS[head]
        mapping = dict(getattr(section, dict_field))
        mapping[name] = _auto(value)
        return replace(config, **{head: replace(section, **{dict_field: mapping})})
    valid = ", ".join(f"{head}.{f}" for f in sub_hints)
    raise ConfigError(f"Unknown setting {key!r}; valid {head} settings: {valid}.")


def _is_dict(kind: Any) -> bool:
    return getattr(kind, "__origin__", None) is dict


def _auto(value: Any) -> Any:
    """Best-effort conversion of free-form text: bool, int, float or text."""
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _convert(value: Any, kind: Any, key: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            low = str(value).lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError  # JSON's true is not 1 epoch
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind is str:
            return str(value)
        if kind == tuple[str, ...]:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 as an int
        name = getattr(kind, "__name__", str(kind))
        raise ConfigError(f"Setting {key!r} must be {_article(name)} {name}, got {value!r}.") from None
    return value


def _article(name: str) -> str:
    return "an" if name[:1] in "aeiou" else "a"


def _to_plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _from_plain(cls: type, data: Any, prefix: str, strict: bool = True) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"Setting {prefix.rstrip('.') or 'config'!r} must be an object.")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown and not strict:
        data = {k: v for k, v in data.items() if k in known}
    elif unknown:
        raise ConfigError(
            f"Unknown setting {prefix + unknown[0]!r}; valid: {', '.join(prefix + k for k in sorted(known))}."
        )
    kwargs = {}
    for name, value in data.items():
        kind = hints[name]
        if is_dataclass(kind):
            kwargs[name] = _from_plain(kind, value, prefix + name + ".", strict)
        elif _is_dict(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"Setting {prefix + name!r} must be an object.")
            kwargs[name] = {k: (_convert(v, float, f"{prefix}{name}.{k}") if name == "weights" else v)
                            for k, v in value.items()}
        else:
            kwargs[name] = _convert(value, kind, prefix + name)
    return cls(**kwargs)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            # options dicts flatten to "dataset.correlation", not "dataset.options.correlation"
            sub = prefix + key + "."
            if key == "options":
                sub = prefix
            if value:
                flat.update(_flatten(value, sub))
        elif isinstance(value, list):
            flat[prefix + key] = ",".join(str(v) for v in value)
        else:
            flat[prefix + key] = json.dumps(value) if isinstance(value, bool) else str(value)
    return flat


# ----- validation --------------------------------------------------------------

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "cosine", "step")
REGRESSION_LOSSES = ("mse", "l1", "huber", "gaussian_nll")  # as mtlcore.losses.REGRESSION_LOSSES (gaussian_nll: Kendall & Gal 2017)
TRUNKS = ("auto", "cnn", "mlp", "resnet18")
PRECISIONS = ("auto", "float32", "bfloat16")  # train.precision; what each means: mtlcore/speed.py
DIAGNOSTICS_COSINES = ("exact", "features")  # train.diagnostics_cosine; see mtlcore/diagnostics.py

# Beyond these a value is a slip of the keyboard (or an attack), not an
# experiment: each trained, overflowed and then "diverged" with a hint that
# blamed the learning rate. Refused with the setting's name instead.
MAX_LOSS_WEIGHT = 1000.0  # the sliders go to 5
MAX_WEIGHT_DECAY = 1.0  # decay 1 pulls every weight to zero as fast as the data pushes it
MAX_L1 = 1.0
MAX_SOFT_LAMBDA = 1000.0  # the slider goes to 10
MAX_FOCAL_GAMMA = 10.0  # Lin et al. 2017 try 0 to 5; at 10 only hopeless examples still count
MAX_SEED = 2**32 - 1  # numpy's RandomState, which the datasets use, takes seeds below 2**32
MAX_METHOD_OPTION = 1e6  # any number given to a weighting method (alpha, temperature, ...)

# Allowed, but large enough to make training blow up: the divergence hint names them.
RISKY = {"loss.weights": 10.0, "reg.weight_decay": 0.1, "reg.l1": 0.01, "reg.soft_lambda": 10.0,
         "loss.focal_gamma": 5.0}


def divergence_causes(config: ExperimentConfig) -> list[str]:
    """The settings of ``config`` that are allowed but large enough to make
    training diverge, as ``key=value`` texts (empty: blame the learning rate)."""
    causes = [f"loss.weights.{t}={config.weight(t):g}" for t in config.tasks
              if config.weight(t) > RISKY["loss.weights"]]
    for key, value in (("reg.weight_decay", config.reg.weight_decay), ("reg.l1", config.reg.l1),
                       ("reg.soft_lambda", config.reg.soft_lambda), ("loss.focal_gamma", config.loss.focal_gamma)):
        if value > RISKY[key]:
            causes.append(f"{key}={value:g}")
    return causes


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


MIN_LABEL_FRACTION = 0.05  # fewer labels than this leaves a few dozen on the small datasets


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """Check ``config`` against the registries; raise ConfigError if impossible.

    Returns the config unchanged so that calls can be chained.
    """
    # Imported here: the registries import torch, the config module does not.
    from .data import DATASETS, resolve_options
    from .models import ARCHITECTURES
    from .weighting import WEIGHTINGS

    def fail(message: str) -> None:
        raise ConfigError(message)

    if config.dataset.name not in DATASETS:
        fail(f"Unknown dataset {config.dataset.name!r} (dataset.name); choose one of: {', '.join(DATASETS.names())}.")
    info = DATASETS.get(config.dataset.name)
    for key, value in config.dataset.options.items():
        if _is_number(value) and not math.isfinite(value):
            fail(f"dataset.{key} must be a finite number, got {value}.")
    try:
        options = resolve_options(config.dataset.name, config.dataset.options)
        if info.footprint is not None:
            info.footprint(**options)  # the dataset's own range checks, before a worker builds it
    except (ValueError, TypeError) as error:
        fail(str(error))
    valid_tasks = [t.name for t in info.tasks]
    if not config.tasks:
        fail(f"Choose at least one task (tasks); {info.name} has: {', '.join(valid_tasks)}.")
    for task in config.tasks:
        if task not in valid_tasks:
            fail(f"Dataset {info.name!r} has no task {task!r} (tasks); its tasks are: {', '.join(valid_tasks)}.")
    if len(set(config.tasks)) != len(config.tasks):
        fail("A task is listed twice (tasks); list each task once.")
    for task, weight in config.loss.weights.items():
        if task not in valid_tasks:
            fail(f"loss.weights.{task} names a task that {info.name!r} does not have; its tasks are: {', '.join(valid_tasks)}.")
        if not math.isfinite(weight) or not 0 <= weight <= MAX_LOSS_WEIGHT:
            fail(f"loss.weights.{task} must be a number from 0 to {MAX_LOSS_WEIGHT:g}, got {weight}.")
    if all(config.weight(t) == 0 for t in config.tasks):
        fail("All loss weights are zero (loss.weights); give at least one task a weight above 0.")
    if config.model.arch not in ARCHITECTURES:
        fail(f"Unknown architecture {config.model.arch!r} (model.arch); choose one of: {', '.join(ARCHITECTURES.names())}.")
    if config.model.arch == "single" and len(config.tasks) != 1:
        fail(f"model.arch=single trains one task; choose exactly one task or another architecture (got {len(config.tasks)} tasks).")
    if config.model.trunk not in TRUNKS:
        fail(f"Unknown trunk {config.model.trunk!r} (model.trunk); choose one of: {', '.join(TRUNKS)}.")
    if info.input_kind == "vector" and config.model.trunk in ("cnn", "resnet18"):
        fail(f"Dataset {info.name!r} has vector inputs; model.trunk must be auto or mlp.")
    if config.model.width < 1 or config.model.width > 1024:
        fail(f"model.width must be between 1 and 1024, got {config.model.width}.")
    if config.model.num_experts < 1 or config.model.num_experts > 64:
        fail(f"model.num_experts must be between 1 and 64, got {config.model.num_experts}.")
    if not 1 <= config.model.layers <= 8:
        fail(f"model.layers (hidden layers of the MLP trunk) must be between 1 and 8, got {config.model.layers}.")
    for key in ("hidden", "expert_hidden", "head_hidden"):
        if not 0 <= getattr(config.model, key) <= 4096:
            fail(f"model.{key} must be between 0 (the default size) and 4096 units, got {getattr(config.model, key)}.")
    mlp_trunk = config.model.trunk == "mlp" or (config.model.trunk == "auto" and info.input_kind == "vector")
    if not mlp_trunk and (config.model.hidden or config.model.expert_hidden
                          or config.model.layers != ModelConfig.layers):
        fail(f"model.layers, model.hidden and model.expert_hidden shape the MLP trunk (model.trunk=mlp, the "
             f"default for vector inputs); this model has model.trunk={config.model.trunk} with "
             f"{info.input_kind} inputs (use model.width).")
    if config.weighting.method not in WEIGHTINGS:
        fail(f"Unknown weighting method {config.weighting.method!r} (weighting.method); choose one of: {', '.join(WEIGHTINGS.names())}.")
    if config.optim.name not in OPTIMIZERS:
        fail(f"Unknown optimiser {config.optim.name!r} (optim.name); choose one of: {', '.join(OPTIMIZERS)}.")
    if not config.optim.lr > 0:
        fail(f"The learning rate must be above 0 (optim.lr), got {config.optim.lr}.")
    if config.optim.lr > 10:
        fail(f"The learning rate {config.optim.lr} is far too large (optim.lr); try a value between 0.0001 and 0.1.")
    if config.optim.schedule not in SCHEDULES:
        fail(f"Unknown schedule {config.optim.schedule!r} (optim.schedule); choose one of: {', '.join(SCHEDULES)}.")
    if not 0 <= config.optim.momentum < 1:
        fail(f"optim.momentum must be in [0, 1), got {config.optim.momentum}.")
    if config.optim.step_size < 1 or not 0 < config.optim.gamma <= 1:
        fail("optim.step_size must be >= 1 and optim.gamma in (0, 1].")
    if config.train.epochs < 1 or config.train.epochs > 1000:
        fail(f"train.epochs must be between 1 and 1000, got {config.train.epochs}.")
    if config.train.batch_size < 2 or config.train.batch_size > 65536:
        # One example per batch cannot be normalised by BatchNorm (and gives no gradient average).
        fail(f"train.batch_size must be between 2 and 65536, got {config.train.batch_size}.")
    for name in ("max_samples", "patience", "diagnostics_every"):
        if getattr(config.train, name) < 0:
            fail(f"train.{name} must be 0 or more, got {getattr(config.train, name)}.")
    if config.train.diagnostics_cosine not in DIAGNOSTICS_COSINES:
        fail(f"Unknown train.diagnostics_cosine {config.train.diagnostics_cosine!r}; "
             f"choose one of: {', '.join(DIAGNOSTICS_COSINES)}.")
    if config.train.precision not in PRECISIONS:
        fail(f"Unknown precision {config.train.precision!r} (train.precision); choose one of: {', '.join(PRECISIONS)}.")
    if config.train.log_every < 1:
        fail(f"train.log_every must be 1 or more, got {config.train.log_every}.")
    fraction = config.train.label_fraction
    if not (_is_number(fraction) and math.isfinite(fraction) and MIN_LABEL_FRACTION <= fraction <= 1):
        fail(f"train.label_fraction must be a number from {MIN_LABEL_FRACTION:g} to 1 (the fraction of training "
             f"samples that keep their labels), got {fraction}.")
    if config.reg.weight_decay < 0 or config.reg.l1 < 0 or config.reg.soft_lambda < 0:
        fail("reg.weight_decay, reg.l1 and reg.soft_lambda must be 0 or more.")
    for key, value, top in (("reg.weight_decay", config.reg.weight_decay, MAX_WEIGHT_DECAY),
                            ("reg.l1", config.reg.l1, MAX_L1), ("reg.soft_lambda", config.reg.soft_lambda, MAX_SOFT_LAMBDA)):
        if value > top:
            fail(f"{key} must be at most {top:g}, got {value:g}; useful values are far smaller (e.g. 0.0001).")
    if not 0 <= config.reg.dropout < 1:
        fail(f"reg.dropout must be in [0, 1), got {config.reg.dropout}.")
    if config.reg.soft_norm not in ("l1", "l2"):
        fail(f"reg.soft_norm must be l1 or l2, got {config.reg.soft_norm!r}.")
    if config.loss.regression not in REGRESSION_LOSSES:
        fail(f"Unknown regression loss {config.loss.regression!r} (loss.regression); choose one of: {', '.join(REGRESSION_LOSSES)}.")
    if not 0 <= config.loss.label_smoothing < 1:
        fail(f"loss.label_smoothing must be in [0, 1), got {config.loss.label_smoothing}.")
    if not 0 <= config.loss.focal_gamma <= MAX_FOCAL_GAMMA:
        fail(f"loss.focal_gamma must be from 0 to {MAX_FOCAL_GAMMA:g} (the focal-loss paper uses 0 to 5), "
             f"got {config.loss.focal_gamma:g}.")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", config.device):
        fail(f"Unknown device {config.device!r} (device); use auto, cpu, cuda, cuda:N or mps.")
    for key, seed in (("seed", config.seed), ("dataset.seed", config.dataset.seed)):
        if not 0 <= seed <= MAX_SEED:
            fail(f"{key} must be a whole number from 0 to {MAX_SEED}, got {seed}.")
    for key, value in config.weighting.options.items():
        if _is_number(value) and not (math.isfinite(value) and abs(value) <= MAX_METHOD_OPTION):
            fail(f"weighting.{key} must be a finite number of at most {MAX_METHOD_OPTION:g} in size, got {value}.")
    # Unknown options, bad values and method/architecture pairs that make no sense are for the
    # method to say first: its sentence names the options it accepts.
    method = WEIGHTINGS.get(config.weighting.method)
    problem = method.incompatibility(config) if hasattr(method, "incompatibility") else None
    if problem:
        fail(problem)
    try:  # constructors store and check their options, nothing more (scikit-learn's rule)
        WEIGHTINGS.get(config.weighting.method)(**config.weighting.options)
    except (TypeError, ValueError) as error:
        fail(f"The options of weighting.method={config.weighting.method} are not accepted: {error}")
    from .budget import check_memory  # last: it builds the model on the meta device

    too_big = check_memory(config)
    if too_big:
        fail(too_big)
    return config
