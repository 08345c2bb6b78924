"""Every kind of input through one door: find it in a table, parse it, key it, encode it.

``load_input_table`` reads a file or frame, finds the input column(s) and parses each with
its kind (:mod:`matfuse.inputs.kinds`); ``parse_inputs`` parses raw values; the kind of a
batch decides its default encoders and the splitters that apply. Readers
(:mod:`matfuse.inputs.readers`) and the one table writer (:mod:`matfuse.inputs.writers`)
live here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from matfuse.inputs.batch import Batch, MultiBatch
from matfuse.inputs.kinds import (
    DEFAULT_KIND,
    KINDS,
    InputKind,
    NoInputColumnError,
    as_batch,
    check_kind,
    convertible,
    detect_columns,
    display_keys,
    get_kind,
    kind_names,
    kind_of,
    similarity_inputs,
)
from matfuse.inputs.readers import read_table
from matfuse.inputs.table import InputTable, label_problems, load_input_table

__all__ = [
    "DEFAULT_KIND",
    "KINDS",
    "Batch",
    "IncompatibleEncoderError",
    "InputKind",
    "InputTable",
    "MultiBatch",
    "NoInputColumnError",
    "as_batch",
    "check_encoders",
    "check_kind",
    "compatible_modalities",
    "default_encoders",
    "detect_columns",
    "detect_input_kind",
    "display_keys",
    "encoder_kind",
    "get_kind",
    "kind_names",
    "kind_of",
    "label_problems",
    "load_input_table",
    "parse_inputs",
    "read_table",
    "similarity_inputs",
]


class IncompatibleEncoderError(ValueError):
    """Encoders that cannot read the inputs' kind; carries the names and the kind."""

    def __init__(self, bad: list[str], kind: str, modalities: list[str]) -> None:
        self.bad = bad
        self.kind = kind
        super().__init__(
            f"encoder(s) {', '.join(bad)} cannot read {kind} inputs; use encoders of "
            f"modality {', '.join(modalities)}"
        )


def default_encoders(kind: str) -> list[str]:
    """The default encoder set of an input type (the union over the kinds of ``a+b``)."""
    out: list[str] = []
    for name in kind_names(kind):
        out += [e for e in get_kind(name).default_encoders if e not in out]
    return out


def compatible_modalities(kind: str) -> list[str]:
    """Encoder modalities that can read an input type (directly or by conversion)."""
    out: list[str] = []
    for name in kind_names(kind):
        for entry in KINDS.entries():
            if convertible(name, entry.name):
                out += [m for m in entry.obj.modalities if m not in out]
    return out


def encoder_kind(modality: str) -> str:
    """The input kind an encoder of ``modality`` computes on."""
    for entry in KINDS.entries():
        if modality in entry.obj.modalities:
            return entry.name
    raise ValueError(f"no input kind reads encoder modality {modality!r}")


def check_encoders(encoders: Sequence[str], kind: str) -> None:
    """Raise :class:`IncompatibleEncoderError` when an encoder cannot read this input type."""
    from matfuse.encoders.registry import get_encoder

    allowed = compatible_modalities(kind)
    bad = []
    for name in encoders:
        modality = get_encoder(name).modality  # building is cheap: weights load lazily
        if modality not in allowed:
            bad.append(f"{name} ({modality})")
    if bad:
        raise IncompatibleEncoderError(bad, kind, allowed)


def parse_inputs(items: Any, kind: str | None = DEFAULT_KIND, **options: Any) -> Any:
    """Parse a batch of inputs of one kind into a row-aligned batch (never drops a row).

    For a multimodal input type (``composition+structure``) ``items`` is a mapping (or a
    frame) from kind to values, or an already parsed :class:`MultiBatch`.
    """
    names = kind_names(kind) if kind is not None and check_kind(kind) else None
    if names is not None and len(names) > 1:
        if isinstance(items, MultiBatch):
            return items
        if not isinstance(items, Mapping | pd.DataFrame):
            raise TypeError(f"inputs of type {kind!r} must map each kind to its values")
        return MultiBatch({n: as_batch(list(items[n]), n, **options) for n in names})
    return as_batch(items, names[0] if names else None, **options)


def detect_input_kind(
    frame: pd.DataFrame, input_type: str | None = None, input_col: str | None = None
) -> tuple[str, str]:
    """Which column holds the inputs, and of which kind (single-column tables)."""
    columns = detect_columns(frame, input_type, [input_col] if input_col else None)
    col, kind = next(iter(columns.items()))
    return kind, col
