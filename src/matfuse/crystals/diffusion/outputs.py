"""What ``crystal-generate`` leaves on disk: the same contract as ``matfuse csp``.

``candidates.csv`` has one row per generated structure with a ``cif`` column (so the table
is an input to ``matfuse predict`` and to ``crystal-train``), ``cif_file`` naming its file
under ``cifs/`` (``candidate_NNNN.cif``, NNNN the generation index), ``formula``,
``spacegroup`` and ``origin``. Invalid cells (atoms closer than 0.5 A) are kept and flagged
in ``valid`` / ``problem``, never dropped. With relaxation (CHGNet, the search's relaxer),
``cif`` is the relaxed structure, ``proposed_cif`` the generated one, rows are ranked by
energy per atom and a failed relaxation is an ``error`` on its row; ``valid`` and
``problem`` always describe the generated (unrelaxed) cell.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from pymatgen.core import Composition, Structure

from matfuse.crystals.diffusion.persistence import CrystalFlowModel
from matfuse.crystals.diffusion.sampling import (
    cell_problem,
    generate_de_novo,
    generate_structures,
)
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = ["generate_table", "write_generated"]


def _spacegroup(structure: Structure) -> str | None:
    from matfuse.materials.symmetry import get_symmetry

    try:
        return str(get_symmetry(structure).symbol)
    except Exception:
        return None


def generate_table(
    flow: CrystalFlowModel,
    composition: Composition | None,
    *,
    n: int,
    seed: int = 0,
    z: int = 1,
    steps: int | None = None,
    relax: bool = False,
    relax_steps: int = 200,
    model_label: str | None = None,
    elements: list[str] | None = None,
    conditions: Mapping[str, float | str] | None = None,
    guidance: float | None = None,
    n_atoms: int | None = None,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Generate ``n`` structures (and relax them when asked); one row each, best first.

    ``composition`` given: CSP; ``None``: de novo (``elements``, ``n_atoms`` restrict it).
    ``valid`` also requires SMACT charge neutrality in de novo mode (``smact_valid``), since
    there the composition is generated too. ``batch_size`` cells are integrated together
    (memory against speed; with a seed it also fixes the result).
    """
    started = time.process_time()
    if composition is None:
        cells = generate_de_novo(
            flow,
            n=n,
            seed=seed,
            n_atoms=n_atoms,
            elements=elements,
            conditions=conditions,
            guidance=guidance,
            steps=steps,
            batch_size=batch_size,
        )
    else:
        cells = generate_structures(
            flow,
            composition,
            n=n,
            seed=seed,
            z=z,
            steps=steps,
            conditions=conditions,
            guidance=guidance,
            batch_size=batch_size,
        )
    per_cell = (time.process_time() - started) / max(1, len(cells))
    relaxer = None
    if relax:
        from matfuse.crystals.search import chgnet_relaxer

        relaxer = chgnet_relaxer(steps=relax_steps)
    rows = []
    mode = "csp" if composition is not None else "de-novo"
    from matfuse.crystals.generators import is_charge_balanced

    for i, cell in enumerate(cells):
        problem = cell_problem(cell)
        charge_ok = is_charge_balanced(cell.composition)
        if problem is None and composition is None and not charge_ok:
            problem = "composition not charge-balanced (SMACT)"
        row: dict[str, object] = {
            "index": i,
            "cif": cell.to(fmt="cif"),
            "formula": cell.composition.reduced_formula,
            "spacegroup": _spacegroup(cell) if problem is None else None,
            "origin": f"diffusion:{flow.name}:{mode}:seed={seed}:{i}",
            "n_atoms": len(cell),
            "volume": float(cell.volume),
            "valid": problem is None,
            "problem": problem,
            "smact_valid": charge_ok,
            "model": model_label or flow.name,
            "seconds": per_cell,
        }
        if relaxer is not None:
            row.update(_relaxed(cell, relaxer))
        rows.append(row)
    table = pd.DataFrame(rows)
    if relaxer is not None:
        table = table.sort_values(
            ["energy_per_atom", "index"], na_position="last", kind="stable"
        ).reset_index(drop=True)
    return table


def _relaxed(cell: Structure, relaxer) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from matfuse.crystals.matching import rms_distance
    from matfuse.materials.energy import DEFAULT_MODEL

    out: dict[str, object] = {
        "proposed_cif": cell.to(fmt="cif"),
        "potential": f"CHGNet {DEFAULT_MODEL}",
    }
    try:
        result = relaxer(cell, True)
        error = result.error
    except Exception as exc:  # a failed relaxation flags its row, never stops the batch
        result, error = None, f"relaxation failed: {first_line(exc)}"
    if (
        result is None
        or result.structure is None
        or error
        or not math.isfinite(result.energy_per_atom)
    ):
        out.update({"energy_per_atom": float("nan"), "error": error or "relaxation failed"})
        return out
    relaxed = result.structure
    out.update(
        {
            "cif": relaxed.to(fmt="cif"),
            "energy_per_atom": float(result.energy_per_atom),
            "spacegroup": _spacegroup(relaxed),
            "rmsd": rms_distance(cell, relaxed),
            "converged": bool(result.converged),
            "n_steps": int(result.n_steps),
            "error": None,
        }
    )
    return out


def write_generated(table: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write ``candidates.csv`` and ``cifs/`` (atomically, file by file); return the CSV path."""
    from matfuse.inputs.writers import write_table, write_text

    out = Path(out_dir)
    cifs = out / "cifs"
    cifs.mkdir(parents=True, exist_ok=True)
    files = []
    for index, cif in zip(table["index"], table["cif"], strict=True):
        name = f"candidate_{int(index):04d}.cif"
        write_text(str(cif), cifs / name)
        files.append(f"cifs/{name}")
    table = table.copy()
    table.insert(2, "cif_file", files)
    return write_table(table, out / "candidates.csv")
