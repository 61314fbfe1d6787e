"""Flat dotted keys (``model.arch=hard``) and plain data: the config's two spellings outside Python.

``set_key`` applies one ``--set`` or URL pair to a config tree, converting
the text to the field's type; ``to_plain`` / ``from_plain`` turn a tree
into JSON-ready dicts and back; ``flatten`` gives the dotted pairs.
"""
from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass, replace
from typing import Any, get_type_hints

from .sections import ConfigError

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


def set_key(config: Any, key: str, value: Any) -> Any:
    """Return ``config`` with the dotted ``key`` set to ``value``.

    ``value`` may be text (from a command line or URL); it is converted to the
    field's type. An unknown key raises a ConfigError listing valid keys.
    """
    parts = key.split(".")
    head = parts[0]
    top = {f.name: f for f in fields(config)}
    if head not in top:
        raise ConfigError(f"Unknown setting {key!r}; valid settings start with: {', '.join(top)}.")
    hints = get_type_hints(type(config))
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


def to_plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def from_plain(cls: type, data: Any, prefix: str, strict: bool = True) -> Any:
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
            kwargs[name] = from_plain(kind, value, prefix + name + ".", strict)
        elif _is_dict(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"Setting {prefix + name!r} must be an object.")
            kwargs[name] = {k: (_convert(v, float, f"{prefix}{name}.{k}") if name == "weights" else v)
                            for k, v in value.items()}
        else:
            kwargs[name] = _convert(value, kind, prefix + name)
    return cls(**kwargs)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            # options dicts flatten to "dataset.correlation", not "dataset.options.correlation"
            sub = prefix + key + "."
            if key == "options":
                sub = prefix
            if value:
                flat.update(flatten(value, sub))
        elif isinstance(value, list):
            flat[prefix + key] = ",".join(str(v) for v in value)
        else:
            flat[prefix + key] = json.dumps(value) if isinstance(value, bool) else str(value)
    return flat
