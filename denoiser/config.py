"""Versioned configuration dataclasses, serialised to and from JSON.

Every config class carries a ``version``; ``from_dict`` refuses unknown fields and newer versions with a
clear message, so a model file written by a later release is never half-understood.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Any, ClassVar, TypeVar

from denoiser.errors import DenoiserError

ConfigT = TypeVar("ConfigT", bound="VersionedConfig")


class ConfigError(DenoiserError):
    """A configuration is malformed, out of bounds, or from a newer version."""


@dataclasses.dataclass
class VersionedConfig:
    """Base for configs: JSON round-trip, version check, and a ``validate`` hook for bounds."""

    VERSION: ClassVar[int] = 1

    def validate(self) -> None:
        """Raise :class:`ConfigError` when a field is out of bounds (subclasses override)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields plus ``version``."""
        data = dataclasses.asdict(self)
        data["version"] = self.VERSION
        return data

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        """Build and validate a config from a dict written by :meth:`to_dict`."""
        data = dict(data)
        version = data.pop("version", cls.VERSION)
        if not is_whole(version):
            raise ConfigError(f"{cls.__name__}: version must be a whole number, not {short(version)}")
        if version > cls.VERSION:
            raise ConfigError(
                f"{cls.__name__} version {version} is newer than this release understands ({cls.VERSION})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        for f in dataclasses.fields(cls):
            # JSON turns tuples into lists; give tuple-typed fields their tuple back.
            if f.name in data and isinstance(data[f.name], list) and "tuple" in str(f.type):
                data[f.name] = tuple(data[f.name])
        try:
            config = cls(**data)
        except TypeError as err:
            raise ConfigError(f"{cls.__name__}: {err}") from err
        try:
            config.validate()
        except (TypeError, ValueError, OverflowError) as err:  # a field of the wrong type compared with a bound
            raise ConfigError(f"{cls.__name__}: a field has the wrong type ({err})") from err
        return config

    @classmethod
    def from_json(cls: type[ConfigT], text: str) -> ConfigT:
        """Parse JSON text written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{cls.__name__}: not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a JSON object")
        return cls.from_dict(data)


def is_whole(value: Any) -> bool:
    """Whether ``value`` is a whole number (an int, numpy's too; not a bool, a float or a string)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (int or float; not a bool, a string, NaN or infinity)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages about a value read from a file."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a deeply nested value, an int too long to print
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def require(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)
