"""``ExperimentConfig``: the whole tree, and its conversions to JSON and flat keys."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from .keys import flatten, from_plain, set_key, to_plain
from .sections import (ConfigError, DatasetConfig, LossConfig, ModelConfig, OptimConfig, RegConfig, TrainConfig,
                       WeightingConfig)


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
        return to_plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True) -> "ExperimentConfig":
        """Build from plain data; ``strict=False`` skips settings this version
        does not know (a config stored by an older or newer MTL Lab)."""
        return from_plain(cls, data, prefix="", strict=strict)

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
        default = flatten(ExperimentConfig().to_dict())
        flat = flatten(self.to_dict())
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
