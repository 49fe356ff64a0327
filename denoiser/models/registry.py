"""The table of autoencoder families: models are built only through :func:`create_model` by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from denoiser.errors import UnknownNameError

_FAMILIES: dict[str, tuple[type, type]] = {}


def register(name: str, config_class: type) -> Callable[[type], type]:
    """Class decorator adding a family under ``name`` with its config dataclass."""

    def add(model_class: type) -> type:
        _FAMILIES[name] = (model_class, config_class)
        return model_class

    return add


def families() -> list[str]:
    """Names of the registered families: the flagship ``unet`` first, then the others alphabetically."""
    return sorted(_FAMILIES, key=lambda name: (name != "unet", name))


def config_class(name: str) -> type:
    """The config dataclass of family ``name``."""
    if name not in _FAMILIES:
        raise UnknownNameError("model family", name, families())
    return _FAMILIES[name][1]


def create_model(name: str, config: Any = None) -> Any:
    """Build family ``name`` from a config object, a dict (as saved in JSON), or the family defaults."""
    cfg_class = config_class(name)
    if config is None:
        config = cfg_class()
    elif isinstance(config, dict):
        config = cfg_class.from_dict(config)
    elif not isinstance(config, cfg_class):
        raise TypeError(f"{name} needs a {cfg_class.__name__}, got {type(config).__name__}")
    config.validate()
    return _FAMILIES[name][0](config)
