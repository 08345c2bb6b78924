"""Parse and validate crystal structures without ever dropping a row.

Inputs may be CIF text, POSCAR text, extended-XYZ text, paths to such files, pymatgen
``Structure`` objects (or their ``as_dict()``), or ASE ``Atoms``. Each row becomes a pymatgen
``Structure`` or, when it cannot be used, ``None`` plus a reason: unparsable text, no
periodic cell, an empty or zero-volume cell, or overlapping atoms. Overlaps are checked
here, not left to the encoders, because a structure with two atoms 0.05 Å apart parses
fine yet gives meaningless descriptors and makes interatomic potentials blow up.

>>> from pymatgen.core import Lattice, Structure
>>> nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
...                                  [[0, 0, 0], [0.5, 0.5, 0.5]])
>>> p = parse_structures([nacl, nacl.to(fmt="cif"), "data_x\\n_cell_length_a 1"])
>>> p.formulas[:2], p.errors[2].split(":")[0]
(['NaCl', 'NaCl'], 'unparsable CIF')
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pymatgen.core import IStructure, Structure

from matfuse.rows import RowAligned, first_line, is_missing

StructureFormat = Literal["auto", "cif", "poscar", "extxyz"]

#: Two atoms closer than this (Å) are an error by default. The shortest real bond (H–H in
#: H2) is 0.74 Å, so 0.5 Å only catches duplicated or misplaced sites.
DEFAULT_MIN_DISTANCE = 0.5
#: Structures with more sites are refused by default: descriptor and potential costs grow
#: with the cell, and such rows are almost always supercells or data errors.
DEFAULT_MAX_SITES = 1000
#: Cells emptier than this (Å³ per atom) are refused before any neighbour list is built:
#: real solids hold ~5–100 Å³ per atom (porous frameworks a few hundred), while a 5-atom cell
#: blown up to 600 Å makes a neighbour search allocate gigabytes.
DEFAULT_MAX_VOLUME_PER_ATOM = 1000.0
#: Denser than this (Å³ per atom) is not matter: refused before the overlap search too.
MIN_VOLUME_PER_ATOM = 0.5
#: Text longer than this (characters) is refused before parsing to bound a bad row's cost.
MAX_TEXT_LENGTH = 5_000_000
#: Cells thinner than this (Å between lattice planes) or smaller than this volume (Å³) are
#: degenerate; checking first also keeps the neighbour search of the overlap test finite.
_MIN_PLANE_SPACING = 1e-3
_MIN_VOLUME = 1e-3

_FILE_FORMATS = {
    ".cif": "cif",
    ".mcif": "cif",
    ".vasp": "poscar",
    ".poscar": "poscar",
    ".xyz": "extxyz",
    ".extxyz": "extxyz",
}


@dataclass
class ParsedStructures(RowAligned):
    """Row-aligned result of parsing a batch of crystal structures.

    ``structures[i]``, ``formulas[i]`` (reduced formula) and ``keys[i]`` (a hash of the
    structure, the cache key of structure encoders) are ``None`` exactly when ``errors[i]``
    is set.
    """

    row_fields: ClassVar[tuple[str, ...]] = ("inputs", "structures", "formulas", "keys", "errors")

    inputs: list[Any]
    structures: list[Structure | None]
    formulas: list[str | None]
    keys: list[str | None]
    errors: list[str | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def objects(self) -> list[Structure | None]:
        """The parsed objects (the name every parsed batch uses)."""
        return self.structures


# ----------------------------------------------------------------------------- readers


def _read_cif(text: str) -> Structure:
    if "_cell_length" not in text and "data_" not in text:
        raise ValueError("no data_ block or cell parameters")
    return Structure.from_str(text, fmt="cif")


def _floats(line: str, n: int) -> bool:
    parts = line.split()
    if len(parts) < n:
        return False
    try:
        [float(p) for p in parts[:n]]
    except ValueError:
        return False
    return True


def check_poscar_counts(text: str) -> None:
    """Refuse a POSCAR whose species, counts and coordinate lines disagree.

    pymatgen reads the counts line and takes that many coordinate lines, so ``Na Cl K`` over
    ``1 1`` reads as NaCl and ``1 0`` over two coordinate lines reads as Na: a different
    structure from the one in the file. Raises ``ValueError`` saying which lines disagree.
    """
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if len(lines) < 8:
        raise ValueError("too few lines for a POSCAR")
    i = 5
    species: list[str] | None = None
    if lines[i].split() and not _floats(lines[i], 1):
        species = lines[i].split()
        i += 1
    try:
        counts = [int(c) for c in lines[i].split()]
    except ValueError:
        raise ValueError(f"line {i + 1} is not a list of atom counts: {lines[i]!r}") from None
    if species is None:
        # VASP 4 style: pymatgen would invent species (H, He, ...) for the counts
        raise ValueError("no species line (line 6): give the element symbols, VASP 5 style")
    if len(species) != len(counts):
        raise ValueError(
            f"{len(species)} species ({' '.join(species)}) but {len(counts)} counts ({lines[i]})"
        )
    if any(c <= 0 for c in counts):
        raise ValueError(f"non-positive atom count in {lines[i]!r}")
    i += 1
    if lines[i][:1].lower() == "s":  # selective dynamics
        i += 1
    i += 1  # the direct/cartesian line
    n_coords = 0
    while i < len(lines) and lines[i] and _floats(lines[i], 3):
        n_coords += 1
        i += 1
    if n_coords != sum(counts):
        raise ValueError(f"counts add up to {sum(counts)} atoms but {n_coords} coordinate lines")


def _read_poscar(text: str) -> Structure:
    check_poscar_counts(text)
    return Structure.from_str(text, fmt="poscar")


def _read_extxyz(text: str) -> Structure:
    import ase.io

    atoms = ase.io.read(io.StringIO(text), format="extxyz", index=0)
    return _from_ase(atoms)


def _from_ase(atoms: Any) -> Structure:
    from pymatgen.io.ase import AseAtomsAdaptor

    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.all() or abs(float(atoms.cell.volume)) < _MIN_VOLUME:
        raise _NotPeriodic(f"no periodic cell (pbc={pbc.tolist()})")
    return AseAtomsAdaptor.get_structure(atoms)


class _NotPeriodic(ValueError):
    """A molecule or slab given where a 3D-periodic crystal is needed."""


_READERS = {"cif": _read_cif, "poscar": _read_poscar, "extxyz": _read_extxyz}
_LABELS = {"cif": "CIF", "poscar": "POSCAR", "extxyz": "extended XYZ"}


def sniff_format(text: str) -> str | None:
    """Guess the format of structure text from its first lines (None when it is unclear)."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines:
        return None
    if any(ln.startswith("data_") for ln in lines) or "_cell_length_a" in text:
        return "cif"
    if lines[0].isdigit() and len(lines) > 1 and "lattice=" in lines[1].lower():
        return "extxyz"
    if lines[0].isdigit():
        return "extxyz"
    if len(lines) >= 7:
        try:
            float(lines[1].split()[0])
            return "poscar"
        except (ValueError, IndexError):
            return None
    return None


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and len(text) < 4096 and os.path.isfile(text)


def _file_format(path: Path) -> str | None:
    name = path.name.upper()
    if name.startswith(("POSCAR", "CONTCAR")):
        return "poscar"
    return _FILE_FORMATS.get(path.suffix.lower())


def _read_file(path: Path, fmt: StructureFormat) -> tuple[Structure | None, str | None]:
    if not path.is_file():
        return None, f"no such structure file: {path}"
    kind = fmt if fmt != "auto" else _file_format(path)
    try:
        if kind is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Structure.from_file(path), None
        text = path.read_text(encoding="utf-8", errors="replace")
    except Exception as exc:
        return None, f"unreadable structure file {path.name}: {first_line(exc)}"
    return _read_text(text, kind)  # type: ignore[arg-type]


def _read_text(text: str, fmt: StructureFormat) -> tuple[Structure | None, str | None]:
    if len(text) > MAX_TEXT_LENGTH:
        return None, f"structure text too long ({len(text)} > {MAX_TEXT_LENGTH} characters)"
    kind = fmt if fmt != "auto" else sniff_format(text)
    if kind is None:
        return None, "unrecognised structure format (expected CIF, POSCAR or extended XYZ)"
    if kind not in _READERS:
        raise ValueError(f"unknown structure format {kind!r}; use {sorted(_READERS)} or 'auto'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _READERS[kind](text), None
    except _NotPeriodic as exc:
        return None, str(exc)
    except Exception as exc:  # parsers raise anything from IndexError to ZeroDivisionError
        return None, f"unparsable {_LABELS[kind]}: {first_line(exc)}"


def _read_one(
    value: Any, fmt: StructureFormat, allow_paths: bool = True
) -> tuple[Structure | None, str | None]:
    if isinstance(value, IStructure):
        return (value if isinstance(value, Structure) else Structure.from_sites(value)), None
    if is_missing(value):
        return None, "empty structure input"
    if isinstance(value, Path):
        if not allow_paths:
            return None, "file paths are not accepted here; give the structure text"
        return _read_file(value, fmt)
    if isinstance(value, str):
        if allow_paths and _looks_like_path(value.strip()):
            return _read_file(Path(value.strip()), fmt)
        return _read_text(value, fmt)
    if isinstance(value, dict):
        try:
            return Structure.from_dict(value), None
        except Exception as exc:
            return None, f"unparsable structure dict: {first_line(exc)}"
    if type(value).__name__ == "Atoms" and hasattr(value, "get_positions"):
        try:
            return _from_ase(value), None
        except _NotPeriodic as exc:
            return None, str(exc)
        except Exception as exc:
            return None, f"unconvertible ASE Atoms: {first_line(exc)}"
    if type(value).__name__ in ("Molecule", "IMolecule"):
        return None, "no periodic cell (a pymatgen Molecule)"
    return None, f"not a structure ({type(value).__name__})"


# -------------------------------------------------------------------------- validation


def check_structure(
    structure: Structure,
    *,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    max_sites: int | None = DEFAULT_MAX_SITES,
    allow_disordered: bool = True,
    max_volume_per_atom: float | None = DEFAULT_MAX_VOLUME_PER_ATOM,
) -> str | None:
    """Reason why a parsed structure cannot be used, or ``None`` when it is fine.

    Cheap checks (site count, finite numbers, handedness, volume per atom, plane spacing)
    come before the neighbour search, so an absurd cell is refused without allocating.
    """
    n = len(structure)
    if n == 0:
        return "empty structure (no sites)"
    if max_sites is not None and n > max_sites:
        return f"structure too large ({n} sites > {max_sites})"
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.isfinite(matrix).all() or not np.isfinite(structure.frac_coords).all():
        return "non-finite lattice or coordinates"
    det = float(np.linalg.det(matrix))
    volume = abs(det)
    if volume < _MIN_VOLUME:
        return f"zero-volume cell ({volume:.3g} Å³)"
    if det < 0:
        return "left-handed cell (a negative lattice length or swapped vectors)"
    per_atom = volume / n
    if max_volume_per_atom is not None and per_atom > max_volume_per_atom:
        return (
            f"cell too empty ({per_atom:.4g} Å³ per atom > {max_volume_per_atom:g}; "
            "raise max_volume_per_atom for porous or molecular cells)"
        )
    spacing = _min_plane_spacing(matrix, volume)
    if spacing < _MIN_PLANE_SPACING:
        return f"degenerate cell (lattice planes {spacing:.3g} Å apart)"
    if not allow_disordered and not structure.is_ordered:
        return "disordered structure (partial occupancies)"
    if min_distance > 0:
        return _overlap_error(structure, min_distance)
    if per_atom < MIN_VOLUME_PER_ATOM:
        limit = MIN_VOLUME_PER_ATOM
        return f"cell too dense ({per_atom:.3g} Å³ per atom < {limit:g})"
    return None


def _min_plane_spacing(matrix: np.ndarray, volume: float) -> float:
    a, b, c = matrix
    areas = [float(np.linalg.norm(np.cross(u, v))) for u, v in ((b, c), (c, a), (a, b))]
    return volume / max(max(areas), 1e-300)


def _overlap_error(structure: Structure, min_distance: float) -> str | None:
    # the neighbour list includes periodic images, so an atom too close to its own image
    # (a cell edge shorter than min_distance) counts as an overlap too
    centers, points, _, distances = structure.get_neighbor_list(min_distance, exclude_self=True)
    close = distances < min_distance
    if not close.any():
        return None
    k = int(np.argmin(np.where(close, distances, np.inf)))
    i, j = int(centers[k]), int(points[k])
    pair = f"site {i} and its periodic image" if i == j else f"sites {i} and {j}"
    return (
        f"overlapping atoms: {pair} are {distances[k]:.3f} Å apart "
        f"(< min_distance {min_distance:g} Å)"
    )


def structure_hash(structure: Structure) -> str:
    """A key equal for identical structures (same lattice, species and site positions).

    Positions are wrapped into the cell and rounded to 1e-6 (lattice to 1e-5 Å), and sites
    are sorted, so a re-ordered or re-read copy of a structure hits the encoder cache.
    It is not a symmetry-aware identity: a shifted origin or another supercell differs.
    """
    frac = np.round(np.mod(np.asarray(structure.frac_coords, dtype=float), 1.0), 6) % 1.0
    frac = frac + 0.0  # turn -0.0 into 0.0 so that the text is stable
    sites = sorted(
        f"{site.species.formula}|{x:.6f},{y:.6f},{z:.6f}"
        for site, (x, y, z) in zip(structure, frac, strict=True)
    )
    lattice = ",".join(f"{v:.5f}" for v in np.round(structure.lattice.matrix, 5).ravel() + 0.0)
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(lattice.encode())
    digest.update(";".join(sites).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- public API


def to_structure(
    value: Any,
    *,
    fmt: StructureFormat = "auto",
    min_distance: float = DEFAULT_MIN_DISTANCE,
    max_sites: int | None = DEFAULT_MAX_SITES,
    allow_disordered: bool = True,
    max_volume_per_atom: float | None = DEFAULT_MAX_VOLUME_PER_ATOM,
    allow_paths: bool = True,
) -> tuple[Structure | None, str | None]:
    """Parse and check one structure; return it or the reason it cannot be used.

    ``allow_paths=False`` treats every string as structure text, never as a file name:
    for text from someone else (a web form), where reading a server-side path that
    happens to exist would hand them its contents in the error message.
    """
    structure, err = _read_one(value, fmt, allow_paths)
    if structure is None:
        return None, err
    try:
        err = check_structure(
            structure,
            min_distance=min_distance,
            max_sites=max_sites,
            allow_disordered=allow_disordered,
            max_volume_per_atom=max_volume_per_atom,
        )
    except Exception as exc:  # e.g. a neighbour search on a pathological cell
        err = f"invalid structure: {first_line(exc)}"
    return (None, err) if err else (structure, None)


def parse_structures(
    items: Iterable[Any] | ParsedStructures,
    *,
    fmt: StructureFormat = "auto",
    min_distance: float = DEFAULT_MIN_DISTANCE,
    max_sites: int | None = DEFAULT_MAX_SITES,
    allow_disordered: bool = True,
    max_volume_per_atom: float | None = DEFAULT_MAX_VOLUME_PER_ATOM,
    allow_paths: bool = True,
) -> ParsedStructures:
    """Parse a batch of structures keeping every row (see the module docstring).

    ``allow_paths=False``: strings are never read as file names (see :func:`to_structure`).

    ``fmt`` forces the format of text rows; ``"auto"`` guesses it from the text (a
    ``data_`` block is CIF, an atom count then ``Lattice=`` is extended XYZ, else POSCAR)
    and, for a path, from the file name. Rows that are structures or ASE ``Atoms`` skip
    parsing but are checked like the others.
    """
    if isinstance(items, ParsedStructures):
        return items
    if isinstance(items, str | Path | IStructure) or type(items).__name__ == "Atoms":
        items = [items]  # one structure, not a sequence of characters or atoms
    inputs = list(items)
    structures: list[Structure | None] = []
    formulas: list[str | None] = []
    keys: list[str | None] = []
    errors: list[str | None] = []
    # pymatgen warns per element with missing data (e.g. no electronegativity for Og)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in inputs:
            structure, err = to_structure(
                item,
                fmt=fmt,
                min_distance=min_distance,
                max_sites=max_sites,
                allow_disordered=allow_disordered,
                max_volume_per_atom=max_volume_per_atom,
                allow_paths=allow_paths,
            )
            formula = key = None
            if structure is not None:
                try:
                    formula = structure.composition.reduced_formula
                    key = structure_hash(structure)
                except Exception as exc:
                    structure, err = None, f"invalid structure: {first_line(exc)}"
            structures.append(structure)
            formulas.append(formula)
            keys.append(key)
            errors.append(err)
    return ParsedStructures(
        inputs=inputs,
        structures=structures,
        formulas=formulas,
        keys=keys,
        errors=errors,
        metadata={
            "fmt": fmt,
            "min_distance": min_distance,
            "max_sites": max_sites,
            "max_volume_per_atom": max_volume_per_atom,
        },
    )
