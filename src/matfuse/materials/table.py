"""A validated table of materials with its targets: the input of training and prediction.

The materials counterpart of :mod:`matfuse.io.table`. A table holds either compositions
(formula strings) or crystal structures (CIF/POSCAR/extended-XYZ text or file paths); which
one is auto-detected from the column names (a ``cif``/``structure`` column means
structures, a ``formula``/``composition`` column compositions) and can be forced with
``input_type``/``input_col``. When both kinds of column exist, as in perov_5 (``cif`` and
``formula``), structures win: they carry strictly more information.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from matfuse.chem.duplicates import find_duplicates
from matfuse.io.readers import READ_ERROR_COLUMN, read_table
from matfuse.io.table import InputTable
from matfuse.materials.compositions import (
    ParsedCompositions,
    composition_key,
    parse_compositions,
    to_composition,
)
from matfuse.materials.structures import (
    DEFAULT_MAX_SITES,
    DEFAULT_MIN_DISTANCE,
    ParsedStructures,
    parse_structures,
    sniff_format,
)
from matfuse.rows import is_missing

InputType = Literal["composition", "structure"]
ParsedMaterials = ParsedCompositions | ParsedStructures

#: Column names taken as the structure column, in order of preference.
STRUCTURE_COLUMN_NAMES = ("cif", "structure", "structures", "poscar", "cif_file", "structure_file")
#: Column names taken as the composition column, in order of preference.
COMPOSITION_COLUMN_NAMES = (
    "formula",
    "composition",
    "formula_pretty",
    "pretty_formula",
    "reduced_formula",
    "chemical_formula",
    "compound",
)
_NAMES: dict[str, tuple[str, ...]] = {
    "structure": STRUCTURE_COLUMN_NAMES,
    "composition": COMPOSITION_COLUMN_NAMES,
}


def _check_type(input_type: str | None) -> None:
    if input_type not in (None, "auto", "composition", "structure"):
        raise ValueError(f"input_type must be 'composition' or 'structure', got {input_type!r}")


def _looks_like(values: Iterable[Any], input_type: str) -> float:
    """Fraction of a column sample that reads as structures (by format) or as formulas."""
    sample = [v for v in values if isinstance(v, str) and v.strip()][:30]
    if not sample:
        return 0.0
    if input_type == "structure":
        return sum(sniff_format(v) is not None for v in sample) / len(sample)
    return sum(to_composition(v)[0] is not None for v in sample) / len(sample)


def _column_by_name(frame: pd.DataFrame, input_type: str) -> str | None:
    lowered = {str(c).strip().lower(): c for c in frame.columns}
    for name in _NAMES[input_type]:
        if name in lowered:
            return lowered[name]
    return None


def _column_by_content(frame: pd.DataFrame, input_type: str) -> str | None:
    best, best_rate = None, 0.0
    for col in frame.columns:
        if not (frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col])):
            continue
        rate = _looks_like(frame[col].dropna().head(30), input_type)
        if rate > best_rate:
            best, best_rate = col, rate
    return best if best_rate >= 0.6 else None


def detect_input(
    frame: pd.DataFrame, input_type: str | None = None, input_col: str | None = None
) -> tuple[InputType, str]:
    """Decide which column holds the materials and whether they are compositions or structures.

    Names decide first (structure names before composition names), then content. Raises
    ``ValueError`` naming the columns when nothing fits, so the user knows to pass
    ``--input-type``/``--input-col``.
    """
    _check_type(input_type)
    kind = None if input_type in (None, "auto") else input_type
    if input_col is not None:
        if input_col not in frame.columns:
            raise KeyError(f"input column {input_col!r} not found; columns: {list(frame.columns)}")
        if kind is None:
            named = str(input_col).strip().lower()
            if named in STRUCTURE_COLUMN_NAMES:
                kind = "structure"
            elif named in COMPOSITION_COLUMN_NAMES:
                kind = "composition"
            else:
                values = frame[input_col].dropna().head(30)
                kind = "structure" if _looks_like(values, "structure") >= 0.6 else "composition"
        return kind, input_col  # type: ignore[return-value]
    for candidate in [kind] if kind else ["structure", "composition"]:
        col = _column_by_name(frame, candidate)
        if col is not None:
            return candidate, col  # type: ignore[return-value]
    for candidate in [kind] if kind else ["structure", "composition"]:
        col = _column_by_content(frame, candidate)
        if col is not None:
            return candidate, col  # type: ignore[return-value]
    wanted = kind or "composition or structure"
    raise ValueError(
        f"could not find a {wanted} column; pass it explicitly (--input-col, --input-type). "
        f"Columns: {list(frame.columns)}"
    )


def parse_materials(
    items: Iterable[Any] | ParsedMaterials,
    input_type: str | None = None,
    **options: Any,
) -> ParsedMaterials:
    """Parse compositions or structures; ``input_type=None`` guesses from the values.

    The guess is "structure" when the first non-empty value is a structure object, ASE
    ``Atoms``, a path, or text in a structure format, and "composition" otherwise.
    ``options`` go to :func:`parse_structures` or :func:`parse_compositions`.
    """
    if isinstance(items, ParsedCompositions | ParsedStructures):
        return items
    _check_type(input_type)
    values = [items] if isinstance(items, str) else list(items)
    kind = None if input_type in (None, "auto") else input_type
    if kind is None:
        kind = "composition"
        first = next((v for v in values if not is_missing(v)), None)
        if first is not None and (
            isinstance(first, Path)
            or type(first).__name__ in ("Structure", "IStructure", "Atoms")
            or (isinstance(first, str) and sniff_format(first) is not None)
        ):
            kind = "structure"
    if kind == "structure":
        return parse_structures(values, **options)
    return parse_compositions(values, **options)


@dataclass
class MaterialTable(InputTable):
    """A frame, its material column and type, the parsed materials and the target names.

    Rows are never dropped: ``parsed.errors[i]`` says why row ``i`` cannot be used.
    """

    frame: pd.DataFrame
    input_col: str
    input_type: InputType
    parsed: ParsedMaterials
    targets: list[str]

    duplicates_label = "duplicate_materials"

    @property
    def inputs(self) -> list[Any]:
        return list(self.frame[self.input_col])

    @property
    def objects(self) -> list[Any]:
        """Compositions or structures, ``None`` for invalid rows."""
        return self.parsed.objects

    @property
    def formulas(self) -> list[str | None]:
        return self.parsed.formulas

    def duplicates(self) -> dict[str, list[int]]:
        """Identical materials on several rows: same fractions, or the same structure."""
        if isinstance(self.parsed, ParsedStructures):
            return find_duplicates(self.parsed.keys)
        keys = [composition_key(c) if c is not None else None for c in self.parsed.compositions]
        return find_duplicates(keys)


def load_material_table(
    source: str | Path | pd.DataFrame,
    *,
    input_type: str | None = None,
    input_col: str | None = None,
    targets: Sequence[str] | None = None,
    allowed_elements: Sequence[str] | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    max_sites: int | None = DEFAULT_MAX_SITES,
) -> MaterialTable:
    """Read (if needed) and validate a table of compositions or structures.

    Target columns must exist (``KeyError`` listing the columns otherwise); bad materials
    only flag their own rows. ``min_distance``/``max_sites`` apply to structures,
    ``allowed_elements`` to both kinds.
    """
    frame = source.copy() if isinstance(source, pd.DataFrame) else read_table(source)
    frame = frame.reset_index(drop=True)
    kind, col = detect_input(frame, input_type, input_col)
    targets = list(targets or [])
    missing = [t for t in targets if t not in frame.columns]
    if missing:
        raise KeyError(f"target column(s) {missing} not found; columns: {list(frame.columns)}")
    values = frame[col].tolist()
    parsed: ParsedMaterials
    if kind == "structure":
        parsed = parse_structures(values, min_distance=min_distance, max_sites=max_sites)
        if allowed_elements is not None:
            _restrict_elements(parsed, frozenset(allowed_elements))
    else:
        parsed = parse_compositions(values, allowed_elements=allowed_elements)
    if READ_ERROR_COLUMN in frame.columns:
        for i, err in enumerate(frame[READ_ERROR_COLUMN]):
            if isinstance(err, str) and err:
                _invalidate(parsed, i, err)
    return MaterialTable(
        frame=frame, input_col=col, input_type=kind, parsed=parsed, targets=targets
    )


def _restrict_elements(parsed: ParsedStructures, allowed: frozenset[str]) -> None:
    for i, structure in enumerate(parsed.structures):
        if structure is None:
            continue
        bad = sorted({el.symbol for el in structure.composition.elements} - allowed)
        if bad:
            _invalidate(parsed, i, f"disallowed element(s): {', '.join(bad)}")


def _invalidate(parsed: ParsedMaterials, i: int, reason: str) -> None:
    parsed.errors[i] = reason
    parsed.formulas[i] = None
    if isinstance(parsed, ParsedStructures):
        parsed.structures[i] = None
        parsed.keys[i] = None
    else:
        parsed.compositions[i] = None
