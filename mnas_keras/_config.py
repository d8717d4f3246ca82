"""Frozen dataclass configs: dotted-key overrides, type coercion and JSON round trips.

The package's one configuration style (training's ``ExperimentConfig`` and the search's
``SearchConfig`` both use it): a config is a frozen dataclass whose fields are plain values
(``bool``, ``int``, ``float``, ``str``, ``tuple``, ``dict``, ``X | None``) or nested config
dataclasses (sections). :func:`override` returns a new config with dotted keys replaced,
checking every key and coercing every value (command-line strings included) to the field's
type; :func:`to_dict` / :func:`from_dict` round-trip through JSON-ready dicts.

Field metadata (see :func:`field`) says whether a field may change when a run resumes
(:func:`resume_conflicts`) and, for a section with subclasses, which class a ``name`` picks.
No TensorFlow here.

Example:
    >>> import dataclasses
    >>> Inner = dataclasses.make_dataclass(  # as @dataclasses.dataclass(frozen=True) classes
    ...     "Inner", [("size", int, 3), ("scale", float | None, None)], frozen=True)
    >>> Outer = dataclasses.make_dataclass("Outer", [
    ...     ("inner", Inner, dataclasses.field(default_factory=Inner)),
    ...     ("steps", int, field(10, mutable_on_resume=True))], frozen=True)
    >>> cfg = override(Outer(), ["inner.size=5", "inner.scale=none", "steps=1_000"])
    >>> cfg
    Outer(inner=Inner(size=5, scale=None), steps=1000)
    >>> from_dict(Outer, to_dict(cfg)) == cfg
    True
    >>> resume_conflicts(Outer, to_dict(Outer()), to_dict(cfg))
    ['inner.size']
    >>> override(cfg, ["inner.sise=1"])
    Traceback (most recent call last):
    ...
    mnas_keras._config.ConfigError: unknown config key 'inner.sise': 'sise' is not a field of Inner; expected one of ['scale', 'size']
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, Callable, Iterable, Mapping

#: Field-metadata key: ``True`` when the field may change between invocations of one run.
MUTABLE_ON_RESUME = "mutable_on_resume"
#: Field-metadata key of a section with subclasses: ``name -> config class`` (raises
#: :class:`ConfigError` for an unknown name). ``section.name=x`` then picks the class.
VARIANTS = "variants"


class ConfigError(ValueError):
    """A config key, override or value is invalid (the message names it)."""


def field(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
          mutable_on_resume: bool = False, variants: Callable[[Any], type] | None = None):
    """A ``dataclasses.field`` carrying this module's metadata.

    Args:
        default, default_factory: as for ``dataclasses.field``.
        mutable_on_resume: the field may differ between invocations of the same run (a
            budget, an output switch); other fields define the run and are checked on resume.
        variants: for a section field: ``name -> config class`` (see :data:`VARIANTS`).

    Returns:
        A ``dataclasses.Field``.
    """
    metadata = {MUTABLE_ON_RESUME: bool(mutable_on_resume)}
    if variants is not None:
        metadata[VARIANTS] = variants
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


# --------------------------------------------------------------------------------------
# dict / JSON round trips


def to_dict(config) -> dict:
    """A JSON-ready nested dict of a config (tuples become lists, dicts are copied)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = json.loads(json.dumps(value))
        out[f.name] = value
    return out


def to_json(config) -> str:
    """:func:`to_dict` as indented JSON with sorted keys."""
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def from_dict(cls: type, data: Mapping, where: str = ""):
    """Builds the config dataclass ``cls`` from :func:`to_dict` output (missing keys: defaults).

    Args:
        cls: the config class.
        data: a nested mapping.
        where: the dotted prefix of ``data`` (for messages).

    Raises:
        ConfigError: an unknown key (named with its dotted path) or a bad value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a mapping; received {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key {where + '.' if where else ''}{unknown[0]!r} for "
            f"{cls.__name__}; expected one of {sorted(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        variants = fields[name].metadata.get(VARIANTS)
        if variants is not None:
            kwargs[name] = from_dict(variants(value.get("name") if isinstance(value, Mapping) else None), value, key)
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, key)
        else:
            kwargs[name] = coerce(value, hint, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def from_json(cls: type, text: str):
    """Inverse of :func:`to_json` for the config class ``cls``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config is not valid JSON: {err}") from None
    return from_dict(cls, data)


# --------------------------------------------------------------------------------------
# coercion and overrides

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Converts ``value`` (possibly a command-line string) to the type ``hint``.

    Strings: ``none``/``null`` for ``X | None``; ``true/false/1/0/yes/no/on/off`` for
    booleans; ``1_000`` for integers; comma-separated or JSON lists for tuples; a JSON
    object for dicts.

    Raises:
        ConfigError: naming ``key``, the expected type and the received value.
    """
    args = typing.get_args(hint)
    if type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], key)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS + _FALSE_WORDS:
            return value.strip().lower() in _TRUE_WORDS
        raise ConfigError(f"{key} expects a boolean (true/false); received {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} expects an integer; received {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key} expects an integer; received {value!r}")
    if hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key} expects a number; received {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{key} expects a finite number; received {value!r}")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} expects a string; received {value!r}")
    if hint is tuple or typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ConfigError(f"{key} expects a JSON list; received {value!r}") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise ConfigError(f"{key} expects a list; received {value!r}")
    if hint is dict or typing.get_origin(hint) is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{key} expects a JSON object; received {value!r} ({err})") from None
        if isinstance(value, Mapping):
            return dict(value)
        raise ConfigError(f"{key} expects a JSON object; received {value!r}")
    raise ConfigError(f"{key}: unsupported field type {hint!r}")


def parse_overrides(overrides) -> list[tuple[str, Any]]:
    """``"key=value"`` strings (or one string, or a mapping) as ``(key, value)`` pairs.

    Raises:
        ConfigError: an item without ``=``.
    """
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, str):
        overrides = [overrides]
    pairs = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} must look like 'section.key=value'")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value))
    return pairs


def override(config, overrides: Mapping[str, Any] | Iterable[str] | str | None):
    """Returns ``config`` with dotted keys replaced, e.g. ``{"trainer.epochs": 3}``.

    Args:
        config: a config dataclass.
        overrides: a mapping of dotted keys to values, or strings ``"key=value"`` as given
            on the command line (values are parsed for the field's type, see :func:`coerce`).

    Returns:
        A new config; ``config`` is unchanged.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or out of range (the
            message names the dotted key).
    """
    for key, value in parse_overrides(overrides):
        config = _override_one(config, key.split("."), value, key)
    return config


def _override_one(config, parts: list[str], value: Any, full_key: str):
    head, rest = parts[0], parts[1:]
    fields = {f.name: f for f in dataclasses.fields(config)}
    if head not in fields:
        raise ConfigError(
            f"unknown config key {full_key!r}: {head!r} is not a field of "
            f"{type(config).__name__}; expected one of {sorted(fields)}"
        )
    current = getattr(config, head)
    variants = fields[head].metadata.get(VARIANTS)
    if variants is not None and rest == ["name"]:
        return dataclasses.replace(config, **{head: variants(value)()})
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"unknown config key {full_key!r}: {head!r} has no sub-keys")
        new_value = _override_one(current, rest, value, full_key)
    else:
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{full_key} is a section; override its keys, e.g. {full_key}.x=1")
            new_value = from_dict(type(current), {**to_dict(current), **value}, full_key)
        else:
            hint = typing.get_type_hints(type(config))[head]
            new_value = coerce(value, hint, full_key)
    try:
        return dataclasses.replace(config, **{head: new_value})
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{full_key}: {err}") from None


# --------------------------------------------------------------------------------------
# resume


def resume_conflicts(cls: type, stored: Mapping, current: Mapping, where: str = "") -> list[str]:
    """The dotted keys whose values differ between two :func:`to_dict` dicts of ``cls`` and
    may not change on resume (fields without ``mutable_on_resume``).

    Keys that are not fields of ``cls`` (extra entries a run stores beside its config)
    count as fixed. A section is compared field by field.

    Args:
        cls: the config class both dicts describe.
        stored, current: the stored and the current dicts.
        where: the dotted prefix (for nested calls).

    Returns:
        The differing fixed keys, sorted.
    """
    prefix = where + "." if where else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    out = []
    for name in sorted(set(stored) | set(current)):
        a, b = stored.get(name), current.get(name)
        f = fields.get(name)
        if f is not None and f.metadata.get(MUTABLE_ON_RESUME):
            continue
        hint = hints.get(name)
        section = isinstance(hint, type) and dataclasses.is_dataclass(hint) and VARIANTS not in f.metadata
        if f is not None and section and isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(resume_conflicts(hint, a, b, prefix + name))
        elif a != b:
            out.append(prefix + name)
    return sorted(out)
