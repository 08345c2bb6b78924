"""Training crystals: a CIF table in, flat batches of atoms out.

A batch holds its crystals' atoms concatenated (PyTorch Geometric's layout without the
dependency): ``atom_types`` and ``frac`` per atom, ``graph`` (which crystal an atom belongs
to), ``n_atoms`` and the lattice per crystal, and ``edges``: every ordered pair of atoms of
the same crystal, self-pairs included (the self-pair carries the lattice alone, and keeps a
one-atom cell connected). All pairs, not a radius graph, as CSPNet: the Fourier features of
fractional differences see every periodic image at once.

Every row of the table is kept in the report: a row whose CIF does not parse, is
disordered or has too many atoms is flagged with its reason and skipped, never a crash.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure

from matfuse.crystals.diffusion.conditions import (
    SCALAR,
    kind_of,
    kind_width,
    structure_condition,
)
from matfuse.crystals.diffusion.lattice import raw_parameters

logger = logging.getLogger(__name__)

__all__ = [
    "CrystalBatch",
    "CrystalSet",
    "batch_crystals",
    "crystal_set_from_table",
    "crystal_set_from_structures",
    "set_conditions",
]

#: Largest cell the default training accepts (MP-20 has at most 20 atoms, Alex-MP-20 too).
DEFAULT_MAX_ATOMS = 64


@dataclass
class CrystalBatch:
    """Crystals as flat tensors (see the module docstring)."""

    atom_types: torch.Tensor  # (N,) atomic numbers
    frac: torch.Tensor  # (N, 3) fractional coordinates in [0, 1)
    graph: torch.Tensor  # (N,) crystal index of each atom
    n_atoms: torch.Tensor  # (B,)
    lattice_raw: torch.Tensor  # (B, 6) raw lattice parameters (lattice.raw_parameters)
    edges: torch.Tensor  # (E, 2) (i, j) atom pairs of the same crystal
    properties: torch.Tensor | None = None  # (B, width) raw condition rows, NaN = unknown

    @property
    def n_crystals(self) -> int:
        return int(self.n_atoms.numel())

    def to(self, device: str | torch.device) -> CrystalBatch:
        return CrystalBatch(
            atom_types=self.atom_types.to(device),
            frac=self.frac.to(device),
            graph=self.graph.to(device),
            n_atoms=self.n_atoms.to(device),
            lattice_raw=self.lattice_raw.to(device),
            edges=self.edges.to(device),
            properties=None if self.properties is None else self.properties.to(device),
        )

    def atom_mask(self, crystals: torch.Tensor) -> torch.Tensor:
        """``(N,)`` True for the atoms of the given crystal indices."""
        keep = torch.zeros(self.n_crystals, dtype=torch.bool, device=self.graph.device)
        keep[crystals] = True
        return keep[self.graph]

    def select(self, crystals: torch.Tensor) -> CrystalBatch:
        """The sub-batch of the given crystal indices (in increasing order): a data-parallel
        rank's share of a batch."""
        atoms = self.atom_mask(crystals)
        n_atoms = self.n_atoms[crystals]
        edges, graph = pair_edges(n_atoms)
        return CrystalBatch(
            atom_types=self.atom_types[atoms],
            frac=self.frac[atoms],
            graph=graph,
            n_atoms=n_atoms,
            lattice_raw=self.lattice_raw[crystals],
            edges=edges,
            properties=None if self.properties is None else self.properties[crystals],
        )


def pair_edges(n_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(edges, graph)``: all ordered atom pairs within each crystal, and each atom's crystal."""
    graph = torch.repeat_interleave(torch.arange(len(n_atoms), device=n_atoms.device), n_atoms)
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    blocks = []
    for off, n in zip(offsets.tolist(), n_atoms.tolist(), strict=True):
        idx = torch.arange(off, off + n, device=n_atoms.device)
        blocks.append(torch.cartesian_prod(idx, idx).reshape(-1, 2))
    return torch.cat(blocks, 0), graph


@dataclass
class CrystalSet:
    """Parsed training crystals (Niggli-reduced cells) and the rows that were skipped."""

    atom_types: list[np.ndarray]
    frac: list[np.ndarray]
    lengths: np.ndarray  # (B, 3) Angstrom
    angles: np.ndarray  # (B, 3) degrees
    source_rows: list[int]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    properties: np.ndarray | None = None  # (B, width) raw condition rows, NaN = unknown
    property_names: list[str] = field(default_factory=list)
    #: kind of each property (conditions.kind_of); empty = all scalars
    property_kinds: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.atom_types)

    @property
    def max_atoms(self) -> int:
        return max((len(a) for a in self.atom_types), default=0)

    def raw_lattices(self) -> torch.Tensor:
        n = torch.tensor([len(a) for a in self.atom_types])
        return raw_parameters(
            torch.as_tensor(self.lengths, dtype=torch.float32),
            torch.as_tensor(self.angles, dtype=torch.float32),
            n,
        )

    def atom_count_histogram(self) -> dict[str, int]:
        """How many training cells have each atom count (de novo sampling draws from it)."""
        counts = np.bincount([len(a) for a in self.atom_types])
        return {str(n): int(c) for n, c in enumerate(counts) if c}

    def batch(self, indices: Sequence[int]) -> CrystalBatch:
        batch = batch_crystals(
            [self.atom_types[i] for i in indices],
            [self.frac[i] for i in indices],
            self.lengths[list(indices)],
            self.angles[list(indices)],
        )
        if self.properties is not None:
            batch.properties = torch.as_tensor(self.properties[list(indices)], dtype=torch.float32)
        return batch


def batch_crystals(
    atom_types: Sequence[np.ndarray],
    frac: Sequence[np.ndarray],
    lengths: np.ndarray,
    angles: np.ndarray,
) -> CrystalBatch:
    """Concatenate crystals into one :class:`CrystalBatch`."""
    n_atoms = torch.tensor([len(a) for a in atom_types], dtype=torch.long)
    edges, graph = pair_edges(n_atoms)
    return CrystalBatch(
        atom_types=torch.as_tensor(np.concatenate(atom_types), dtype=torch.long),
        frac=torch.as_tensor(np.concatenate(frac) % 1.0, dtype=torch.float32),
        graph=graph,
        n_atoms=n_atoms,
        lattice_raw=raw_parameters(
            torch.as_tensor(lengths, dtype=torch.float32),
            torch.as_tensor(angles, dtype=torch.float32),
            n_atoms,
        ),
        edges=edges,
    )


def _usable(structure: Structure, max_atoms: int) -> tuple[Structure | None, str | None]:
    if not structure.is_ordered:
        return None, "disordered structure (partial occupancies): CSP needs one element per site"
    if len(structure) > max_atoms:
        return None, f"{len(structure)} atoms, over the limit of {max_atoms}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reduced = structure.get_reduced_structure()  # Niggli: one cell per lattice
    except Exception as exc:
        return None, f"Niggli reduction failed: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    return reduced, None


def crystal_set_from_structures(
    structures: Sequence[Structure | None],
    errors: Sequence[str | None] | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> CrystalSet:
    """A :class:`CrystalSet` from parsed structures (``None`` rows carry their ``errors``)."""
    types, fracs, lengths, angles, rows = [], [], [], [], []
    skipped: list[tuple[int, str]] = []
    for i, s in enumerate(structures):
        if s is None:
            skipped.append((i, (errors[i] if errors else None) or "unreadable structure"))
            continue
        reduced, err = _usable(s, max_atoms)
        if reduced is None:
            skipped.append((i, err or "unusable structure"))
            continue
        types.append(np.array([site.specie.Z for site in reduced], dtype=np.int64))
        fracs.append(np.asarray(reduced.frac_coords, dtype=np.float64) % 1.0)
        lengths.append(reduced.lattice.abc)
        angles.append(reduced.lattice.angles)
        rows.append(i)
    return CrystalSet(
        atom_types=types,
        frac=fracs,
        lengths=np.asarray(lengths, dtype=np.float64).reshape(-1, 3),
        angles=np.asarray(angles, dtype=np.float64).reshape(-1, 3),
        source_rows=rows,
        skipped=skipped,
    )


def set_conditions(
    crystals: CrystalSet,
    structures: Sequence[Structure | None],
    names: Sequence[str],
    columns: Mapping[str, Sequence[float] | np.ndarray] | None = None,
) -> CrystalSet:
    """Attach the named conditions to ``crystals`` (one structure per kept crystal).

    Scalars come from ``columns`` (one value per crystal, NaN = unknown); ``space_group``
    and ``chemical_system`` are derived from each structure
    (:func:`~matfuse.crystals.diffusion.conditions.structure_condition`).
    """
    if len(structures) != len(crystals):
        raise ValueError(f"{len(structures)} structures for {len(crystals)} crystals")
    columns = columns or {}
    blocks = []
    for name in names:
        kind = kind_of(name)
        if kind == SCALAR:
            if name not in columns:
                raise ValueError(f"no values for the condition {name!r}")
            values = np.asarray(columns[name], dtype=float).reshape(-1, 1)
        else:
            values = np.array(
                [
                    structure_condition(kind, s) if s is not None else [np.nan] * kind_width(kind)
                    for s in structures
                ],
                dtype=float,
            ).reshape(len(structures), kind_width(kind))
        blocks.append(values)
    crystals.properties = np.concatenate(blocks, 1) if blocks else None
    crystals.property_names = list(names)
    crystals.property_kinds = [kind_of(n) for n in names]
    return crystals


def crystal_set_from_table(
    path: str | Path,
    column: str = "cif",
    max_atoms: int = DEFAULT_MAX_ATOMS,
    properties: Sequence[str] = (),
) -> CrystalSet:
    """Read a table (CSV, parquet, ...) and parse its ``column`` of CIF texts.

    ``properties`` names the conditions: numeric columns (a non-numeric or empty cell is
    NaN: that crystal is trained unconditioned on that property, not dropped), or
    ``space_group`` / ``chemical_system``, derived from each structure.
    ``ValueError`` when a column is missing or no row is usable; otherwise the bad rows are
    in ``skipped`` (row number, reason) and logged as one count.
    """
    from matfuse.inputs.readers import read_table
    from matfuse.materials.structures import parse_structures

    frame = read_table(path)
    if column not in frame.columns:
        raise ValueError(
            f"{path}: no {column!r} column (columns: {', '.join(map(str, frame.columns))})"
        )
    texts = [t if isinstance(t, str) else "" for t in frame[column].tolist()]
    parsed = parse_structures(texts, fmt="cif", allow_paths=False, max_sites=max_atoms)
    crystals = crystal_set_from_structures(parsed.structures, parsed.errors, max_atoms)
    missing = [p for p in properties if p not in frame.columns and kind_of(p) == SCALAR]
    if missing:
        raise ValueError(f"{path}: no property column {', '.join(map(repr, missing))}")
    if properties:
        import pandas as pd

        kept = [parsed.structures[i] for i in crystals.source_rows]
        columns = {
            p: pd.to_numeric(frame[p], errors="coerce").to_numpy(float)[crystals.source_rows]
            for p in properties
            if kind_of(p) == SCALAR
        }
        set_conditions(crystals, kept, list(properties), columns)
    if not len(crystals):
        # one line for the user: the error carries the first reason, no warning before it
        first = " (first: row {}, {})".format(*crystals.skipped[0]) if crystals.skipped else ""
        raise ValueError(f"{path}: no usable structure in {len(frame)} rows{first}")
    if crystals.skipped:
        logger.warning(
            "%s: %d of %d rows skipped (first: row %d, %s)",
            path,
            len(crystals.skipped),
            len(frame),
            *crystals.skipped[0],
        )
    return crystals
