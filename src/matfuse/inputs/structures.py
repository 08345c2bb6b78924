"""Crystal structures as an input kind: CIF, POSCAR or extended-XYZ text, file paths,
pymatgen ``Structure`` or ASE ``Atoms``.

Parsing and physical checks live in :mod:`matfuse.materials.structures`; the key is a hash
of the structure. A structure also has a composition, so composition encoders and
composition splitters (element, chemical system) read structure tables too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from matfuse.inputs.kinds import KINDS, InputKind

#: Column names taken as the structure column, in order of preference.
STRUCTURE_COLUMN_NAMES = ("cif", "structure", "structures", "poscar", "cif_file", "structure_file")


def to_compositions(batch: Any) -> Any:
    """The composition of every structure of a batch; failed rows keep their reason."""
    from matfuse.materials.compositions import parse_compositions

    comps = parse_compositions(list(batch.structures))
    comps.inputs = list(batch.inputs)
    for i, err in enumerate(batch.errors):
        if err is not None:
            comps.errors[i] = err
            comps.compositions[i] = None
            comps.formulas[i] = None
    return comps


class StructureKind(InputKind):
    """Crystal structures; the key is a hash of the (reduced) structure.

    Default encoders: the element statistics of the composition, which carry most of the
    signal for formation energies, a fingerprint of the geometry, and the embedding of the
    pretrained CHGNet potential; with deeper, longer boosting (``default_model_params``)
    they give perov_5 test MAE 0.0946 ± 0.0014 eV against 0.152 without CHGNet
    (``benchmarks/results/structure_defaults.md``).
    """

    name = "structure"
    description = "crystal structures (CIF, POSCAR, extended XYZ, pymatgen, ASE)"
    aliases = ("structures", "crystal", "crystals", "cif", "poscar")
    column_names = STRUCTURE_COLUMN_NAMES
    name_priority = 20
    content_priority = 10
    modalities = ("structure",)
    default_encoders = ("composition", "structure-descriptors", "chgnet")
    # depth 5 helps the structure sets but costs some composition sets (jdft2d +8%),
    # so it is the structure kind's default, not XGBoost's
    default_model_params: ClassVar[dict[str, dict[str, Any]]] = {
        "xgboost": {"n_estimators": 1000, "max_depth": 5}
    }
    options = (
        "fmt",
        "min_distance",
        "max_sites",
        "allow_disordered",
        "max_volume_per_atom",
        "allow_paths",
    )
    key_label = "formula"
    noun = "structure"
    plural = "structures"
    conversions: ClassVar[dict[str, Any]] = {"composition": to_compositions}

    @property
    def batch_type(self) -> type:  # type: ignore[override]
        from matfuse.materials.structures import ParsedStructures

        return ParsedStructures

    def parse(self, values: Sequence[Any], **options: Any) -> Any:
        from matfuse.materials.structures import parse_structures

        return parse_structures(list(values), **options)

    def accepts_object(self, value: Any) -> bool:
        return type(value).__name__ in ("Structure", "IStructure", "Atoms")

    def reads_as(self, value: Any) -> bool:
        # by format only: a full parse of every sampled CIF is slow and detection only
        # needs to know that the column holds structure text
        from pathlib import Path

        from matfuse.materials.structures import sniff_format

        if isinstance(value, Path):
            return True
        return isinstance(value, str) and sniff_format(value) is not None

    def recognises_text(self, text: str) -> bool:
        from matfuse.materials.structures import sniff_format

        return sniff_format(text) is not None

    def display_keys(self, batch: Any) -> list[str | None]:
        return list(batch.formulas)


KINDS.add(
    StructureKind.name,
    StructureKind(),
    description=StructureKind.description,
    aliases=StructureKind.aliases,
    tags={"builtin", "material"},
)
