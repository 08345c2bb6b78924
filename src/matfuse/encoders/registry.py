"""The one registry of encoders, read by the Python API, the CLI and the web UI alike.

An encoder is referred to by a *spec string*: its registered name, optionally followed by
parameters, ``name:key=value:key=value`` (e.g. ``ecfp-count:radius=3:n_bits=4096``), so
that a parameterised encoder can be named on a command line and stored in a JSON config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from matfuse.encoders.base import BaseEncoder
from matfuse.registry import Registry, parse_value


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: how to build it and what it is."""

    name: str
    factory: Callable[..., BaseEncoder]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def build(self, **params: Any) -> BaseEncoder:
        return self.factory(**{**self.defaults, **params})

    @property
    def modality(self) -> str:
        return self.build().modality

    @property
    def pretrained(self) -> bool:
        return self.build().pretrained

    @property
    def dim(self) -> int:
        return self.build().dim


#: Every encoder by name (the built-ins register when the registry is first read).
ENCODERS: Registry[EncoderSpec] = Registry("encoder", loader="matfuse.encoders.builtins")


def register_encoder(
    name: str,
    factory: Callable[..., BaseEncoder],
    *,
    description: str = "",
    overwrite: bool = False,
    **defaults: Any,
) -> EncoderSpec:
    """Register ``factory`` (an encoder class or function) under ``name``.

    Tags are the modality and ``pretrained`` where the class says so (read without building
    the encoder, so registering never loads weights).
    """
    spec = EncoderSpec(name=name, factory=factory, defaults=defaults, description=description)
    tags = {getattr(factory, "modality", "")} | (
        {"pretrained"} if getattr(factory, "pretrained", False) else set()
    )
    ENCODERS.add(name, spec, description=description, tags=tags - {""}, overwrite=overwrite)
    return spec


def parse_encoder_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name:key=value:..."`` into the name and a parameter dict."""
    name, *parts = spec.strip().split(":")
    params: dict[str, Any] = {}
    for part in parts:
        if "=" not in part:
            raise ValueError(f"bad encoder parameter {part!r} in {spec!r}: expected key=value")
        key, value = part.split("=", 1)
        params[key.strip()] = parse_value(value)
    return name, params


def get_encoder(spec: str, **params: Any) -> BaseEncoder:
    """Build a registered encoder from its name or spec string.

    >>> get_encoder("ecfp:radius=3").radius
    3
    """
    name, parsed = parse_encoder_spec(spec)
    return ENCODERS.get(name).build(**{**parsed, **params})


def list_encoders(modality: str | None = None) -> list[EncoderSpec]:
    """Registered encoders, optionally only those of one modality."""
    specs = [e.obj for e in ENCODERS.entries()]
    return [s for s in specs if modality is None or s.modality == modality]
