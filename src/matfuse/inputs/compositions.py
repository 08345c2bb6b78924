"""Compositions as an input kind: chemical formulas (``Fe2O3``, ``Li0.5CoO2``).

Parsing and checks live in :mod:`matfuse.materials.compositions`; a cell holding CIF or
POSCAR text is read as a structure and contributes its composition, so that a column mixing
formulas and structure text still works for composition encoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from matfuse.inputs.kinds import KINDS, InputKind

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


class CompositionKind(InputKind):
    """Formulas; the key is pymatgen's reduced formula.

    The default encoder is Magpie-style element statistics, the representation that
    Matbench's composition baselines (RF-SCM/Magpie) use.
    """

    name = "composition"
    description = "chemical formulas (pymatgen compositions)"
    aliases = ("formula", "formulas", "compositions")
    column_names = COMPOSITION_COLUMN_NAMES
    name_priority = 30
    content_priority = 30
    modalities = ("composition",)
    default_encoders = ("composition",)
    options = ("allowed_elements",)
    key_label = "formula"
    noun = "composition"
    plural = "compositions"
    conversions: ClassVar[dict[str, Any]] = {}

    @property
    def batch_type(self) -> type:  # type: ignore[override]
        from matfuse.materials.compositions import ParsedCompositions

        return ParsedCompositions

    def parse(self, values: Sequence[Any], **options: Any) -> Any:
        from matfuse.materials.compositions import parse_compositions
        from matfuse.materials.structures import sniff_format, to_structure

        rows: list[Any] = []
        read_errors: dict[int, str] = {}
        for i, value in enumerate(values):
            if isinstance(value, str) and sniff_format(value) is not None:
                structure, err = to_structure(value)
                rows.append(structure)
                if err is not None:
                    read_errors[i] = err
            else:
                rows.append(value)
        batch = parse_compositions(rows, **options)
        batch.inputs = list(values)
        for i, err in read_errors.items():
            invalidate(batch, i, err)
        return batch

    def accepts_object(self, value: Any) -> bool:
        return type(value).__name__ == "Composition"

    def reads_as(self, value: Any) -> bool:
        from matfuse.materials.compositions import to_composition

        return to_composition(value)[0] is not None


def invalidate(batch: Any, i: int, reason: str) -> None:
    """Mark row ``i`` of a composition batch as unusable for ``reason``."""
    batch.errors[i] = reason
    batch.compositions[i] = None
    batch.formulas[i] = None


KINDS.add(
    CompositionKind.name,
    CompositionKind(),
    description=CompositionKind.description,
    aliases=CompositionKind.aliases,
    tags={"builtin", "material"},
)
