"""Example data sets for compositions and crystal structures, made offline from installed code.

Two sets, so that a fresh clone can walk both materials workflows without a download:

* **Experimental formation enthalpies** (compositions, real data): the 2,135 measured
  formation enthalpies that pymatgen ships inside its wheel
  (``pymatgen/analysis/compatibility/exp_compounds.json.gz``) to fit the MP2020 energy
  corrections (Wang et al., *Sci. Rep.* 11, 15496, 2021). Read as JSON, converted from
  eV per formula unit to eV per atom.
* **Prototype crystals** (structures, synthetic): rocksalt, CsCl, zincblende, wurtzite,
  fluorite, antifluorite, cubic perovskite and rutile cells over element substitutions,
  with lattice constants from Shannon ionic radii (no relaxation). The target is the
  Ewald (point-charge) electrostatic energy per atom with formal oxidation states,
  computed by pymatgen, so it depends on both chemistry and geometry; the density is a
  second, easier target. One row is broken on purpose (overlapping atoms) to show how a
  bad row is flagged. Generation takes about a second and is cached per server process.

Nothing here is copied from a shared data directory; everything comes from the installed
pymatgen package.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import threading
import warnings
import zipfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

FORMATION_TARGET = "formation_enthalpy"
EWALD_TARGET = "ewald_energy"
BROKEN_ID = "broken-on-purpose"
_ZIP_LOCK = threading.Lock()

#: Prototype cells written out site by site (conventional cells), because building them with
#: ``Structure.from_spacegroup`` costs ~0.4 s each (pymatgen expands the space group every
#: time). Sites are (role, fractional coordinates); role 0 is the cation, 1 the anion (the
#: perovskite's roles are A, B, X). Lattice builders take the cation–anion distance d (Å).
_SQRT3 = math.sqrt(3.0)
_RUTILE_U = 0.305
_WURTZITE_U = 0.375
_FCC = [(0.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)]


def _shifted(role: int, shift: tuple[float, float, float]) -> list[tuple[int, Any]]:
    return [(role, tuple((t + s) % 1.0 for t, s in zip(f, shift, strict=True))) for f in _FCC]


def _cubic(factor: float) -> Any:
    return lambda d: ("cubic", (factor * d,))


def _wurtzite(d: float) -> tuple[str, tuple[float, ...]]:
    a = math.sqrt(8.0 / 3.0) * d
    return "hexagonal", (a, a * math.sqrt(8.0 / 3.0))


def _rutile(d: float) -> tuple[str, tuple[float, ...]]:
    a = d / (_RUTILE_U * math.sqrt(2.0))
    return "tetragonal", (a, 0.644 * a)


_U, _W = _RUTILE_U, _WURTZITE_U
_AX_1 = [(c, 1, a, -1) for c in ("Li", "Na", "K", "Rb") for a in ("F", "Cl", "Br", "I")]
_AX_2 = [
    (c, 2, a, -2) for c in ("Mg", "Ca", "Sr", "Ba", "Ni", "Mn", "Cd") for a in "O S Se".split()
]
_PROTOTYPES: list[dict[str, Any]] = [
    {
        "name": "rocksalt",
        "sites": _shifted(0, (0, 0, 0)) + _shifted(1, (0.5, 0.5, 0.5)),
        "lattice": _cubic(2.0),
        "members": _AX_1 + _AX_2,
    },
    {
        "name": "CsCl",
        "sites": [(0, (0, 0, 0)), (1, (0.5, 0.5, 0.5))],
        "lattice": _cubic(2.0 / _SQRT3),
        "members": [(c, 1, a, -1) for c in ("Cs", "Rb", "Tl") for a in ("Cl", "Br", "I")],
    },
    {
        "name": "zincblende",
        "sites": _shifted(0, (0, 0, 0)) + _shifted(1, (0.25, 0.25, 0.25)),
        "lattice": _cubic(4.0 / _SQRT3),
        "members": [(c, 2, a, -2) for c in ("Zn", "Cd", "Be", "Hg") for a in ("S", "Se", "Te")]
        + [(c, 3, a, -3) for c in ("Al", "Ga", "In", "B") for a in ("N", "P", "As", "Sb")],
    },
    {
        "name": "wurtzite",
        "sites": [
            (0, (1 / 3, 2 / 3, 0)),
            (0, (2 / 3, 1 / 3, 0.5)),
            (1, (1 / 3, 2 / 3, _W)),
            (1, (2 / 3, 1 / 3, 0.5 + _W)),
        ],
        "lattice": _wurtzite,
        "members": [(c, 2, a, -2) for c in ("Zn", "Cd", "Be", "Mg") for a in ("O", "S", "Se")]
        + [(c, 3, "N", -3) for c in ("Al", "Ga", "In")],
    },
    {
        "name": "fluorite",
        "sites": _shifted(0, (0, 0, 0))
        + _shifted(1, (0.25, 0.25, 0.25))
        + _shifted(1, (0.75, 0.75, 0.75)),
        "lattice": _cubic(4.0 / _SQRT3),
        "members": [(c, 2, "F", -1) for c in ("Ca", "Sr", "Ba", "Cd", "Pb")]
        + [(c, 4, "O", -2) for c in ("Ce", "Th", "U", "Zr", "Hf")],
    },
    {
        "name": "antifluorite",
        # the anion on the fcc sites, cations in the tetrahedral holes
        "sites": _shifted(1, (0, 0, 0))
        + _shifted(0, (0.25, 0.25, 0.25))
        + _shifted(0, (0.75, 0.75, 0.75)),
        "lattice": _cubic(4.0 / _SQRT3),
        "members": [(c, 1, a, -2) for c in ("Li", "Na", "K", "Rb") for a in ("O", "S", "Se", "Te")],
    },
    {
        "name": "rutile",
        "sites": [
            (0, (0, 0, 0)),
            (0, (0.5, 0.5, 0.5)),
            (1, (_U, _U, 0)),
            (1, (1 - _U, 1 - _U, 0)),
            (1, (0.5 + _U, 0.5 - _U, 0.5)),
            (1, (0.5 - _U, 0.5 + _U, 0.5)),
        ],
        "lattice": _rutile,
        "members": [(c, 4, "O", -2) for c in ("Ti", "Sn", "Ge", "Mn", "Pb", "Ru", "Ir", "Cr")]
        + [(c, 2, "F", -1) for c in ("Mg", "Zn", "Ni", "Co", "Fe", "Mn")],
    },
]
_PEROVSKITE_SITES = [
    (0, (0, 0, 0)),
    (1, (0.5, 0.5, 0.5)),
    (2, (0.5, 0.5, 0)),
    (2, (0.5, 0, 0.5)),
    (2, (0, 0.5, 0.5)),
]
#: Cubic perovskites ABX3: (A, its charge, B, its charge, X, its charge).
_PEROVSKITES = [
    (a, 2, b, 4, "O", -2) for a in ("Ca", "Sr", "Ba", "Pb") for b in ("Ti", "Zr", "Hf", "Sn")
] + [(a, 1, b, 2, "F", -1) for a in ("K", "Rb", "Cs") for b in ("Mg", "Zn", "Ni", "Co", "Mn")]


def _radius(symbol: str, charge: int) -> float:
    """Shannon ionic radius (Å) for the formal charge, with element-level fallbacks."""
    from pymatgen.core import Element, Species

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getters = [
            lambda: Species(symbol, charge).ionic_radius,
            lambda: Element(symbol).average_ionic_radius,
            lambda: Element(symbol).atomic_radius,
        ]
        if charge < 0:  # an element's average ionic radius is over its cations: too small
            getters[1], getters[2] = getters[2], getters[1]
        for get in getters:
            try:
                value = get()
            except (ValueError, KeyError, AttributeError):
                continue
            if value is not None and float(value) > 0:
                return float(value)
    return 1.0


def _ewald_per_atom(structure: Any, charges: dict[str, int]) -> float:
    from pymatgen.analysis.ewald import EwaldSummation

    decorated = structure.copy()
    decorated.add_oxidation_state_by_element(charges)
    return float(EwaldSummation(decorated).total_energy) / len(decorated)


def _build(
    kind_params: tuple[str, tuple[float, ...]], roles: list[str], sites: list[tuple[int, Any]]
) -> Any:
    from pymatgen.core import Lattice, Structure

    system, params = kind_params
    if system == "cubic":
        lattice = Lattice.cubic(params[0])
    elif system == "hexagonal":
        lattice = Lattice.hexagonal(params[0], params[1])
    else:
        lattice = Lattice.tetragonal(params[0], params[1])
    return Structure(lattice, [roles[r] for r, _ in sites], [list(f) for _, f in sites])


def _broken_cif() -> str:
    """A rocksalt cell with a second Na 0.06 Å from the first: parses, then fails the checks."""
    from pymatgen.core import Lattice, Structure

    cell = Structure(
        Lattice.cubic(5.64),
        ["Na", "Na", "Cl"],
        [[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.5, 0.5, 0.5]],
    )
    return str(cell.to(fmt="cif"))


@lru_cache(maxsize=1)
def prototype_structures() -> pd.DataFrame:
    """The synthetic structure table: ``id``, ``prototype``, ``cif`` and the two targets."""
    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for proto in _PROTOTYPES:
            for cation, qc, anion, qa in proto["members"]:
                d = max(_radius(cation, qc) + _radius(anion, qa), 1.6)
                structure = _build(proto["lattice"](d), [cation, anion], proto["sites"])
                rows.append(_row(proto["name"], structure, {cation: qc, anion: qa}))
        for a, qa, b, qb, x, qx in _PEROVSKITES:
            d = max(_radius(b, qb) + _radius(x, qx), 1.6)
            structure = _build(("cubic", (2.0 * d,)), [a, b, x], _PEROVSKITE_SITES)
            rows.append(_row("perovskite", structure, {a: qa, b: qb, x: qx}))
    rows.append(
        {
            "id": BROKEN_ID,
            "prototype": "rocksalt",
            "cif": _broken_cif(),
            EWALD_TARGET: float("nan"),
            "density": float("nan"),
        }
    )
    frame = pd.DataFrame(rows)
    logger.info("generated %d prototype structures", len(frame))
    return frame


def _row(prototype: str, structure: Any, charges: dict[str, int]) -> dict[str, Any]:
    formula = structure.composition.reduced_formula
    return {
        "id": f"{prototype}-{formula}",
        "prototype": prototype,
        "cif": str(structure.to(fmt="cif")),
        EWALD_TARGET: round(_ewald_per_atom(structure, charges), 4),
        "density": round(float(structure.density), 4),
    }


@lru_cache(maxsize=1)
def formation_enthalpies() -> pd.DataFrame:
    """pymatgen's experimental formation enthalpies: ``formula``, ΔHf and its uncertainty."""
    from pymatgen.core import Composition

    source = resources.files("pymatgen.analysis.compatibility") / "exp_compounds.json.gz"
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        records = json.load(handle)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rec in records:
            atoms = Composition(rec["formula"]).num_atoms
            uncertainty = rec.get("uncertainty")
            rows.append(
                {
                    "formula": rec["formula"],
                    FORMATION_TARGET: round(float(rec["exp energy"]) / atoms, 5),
                    "uncertainty": (
                        round(float(uncertainty) / atoms, 5)
                        if uncertainty is not None and math.isfinite(float(uncertainty))
                        else float("nan")
                    ),
                    "mp_id": rec.get("mpid"),
                }
            )
    return pd.DataFrame(rows)


def example_zip(directory: Path, n: int = 6) -> Path:
    """A small zip in the upload format: CIF files, one broken file and ``labels.csv``.

    Offered for download in the Data tab so that users see what a structure zip looks like.
    """
    path = Path(directory) / "matfuse-example-structures.zip"
    with _ZIP_LOCK:
        if path.exists():
            return path
        frame = prototype_structures()
        picked = frame[frame["id"] != BROKEN_ID].groupby("prototype").head(1).head(n)
        buffer = io.BytesIO()
        labels = ["file," + EWALD_TARGET]
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for _, row in picked.iterrows():
                name = f"{row['id']}.cif"
                archive.writestr(name, row["cif"])
                labels.append(f"{name},{row[EWALD_TARGET]}")
            archive.writestr("truncated.cif", "data_truncated\n_cell_length_a 4.0\n")
            archive.writestr("labels.csv", "\n".join(labels) + "\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)
    return path
