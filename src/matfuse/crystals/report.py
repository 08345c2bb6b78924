"""What a crystal search leaves on disk: the ranked table, one CIF per candidate, a plot.

Written by :func:`~matfuse.crystals.search.crystal_structure_prediction` (so the API and
``matfuse csp`` give the same files), atomically, after the journal: a kill while writing
leaves the previous outputs and the journal intact.

- ``candidates.csv``: one row per candidate, best first, failures last; ``cif`` holds the
  relaxed CIF text (so the table is itself an input to ``matfuse predict``), ``cif_file``
  its file under ``cifs/``, ``potential`` the model that made energies and hull.
- ``cifs/candidate_NNNN.cif``: named by evaluation number, stable across resumed runs.
- ``energy_vs_evaluation.png``: each relaxation's energy per atom and the running best.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from matfuse.crystals.search import CSPResult
from matfuse.inputs.writers import atomic_path, write_table, write_text

logger = logging.getLogger(__name__)

__all__ = ["plot_energy_vs_evaluation", "write_results"]


def _cif_name(index: int) -> str:
    return f"candidate_{index:04d}.cif"


def write_results(result: CSPResult, out_dir: str | Path) -> Path:
    """Write ``candidates.csv``, ``cifs/``, ``summary.json`` and the plot; return the CSV path."""
    out = Path(out_dir)
    cifs = out / "cifs"
    cifs.mkdir(parents=True, exist_ok=True)
    table = result.table()
    files: list[str | None] = []
    for c, cif in zip(result.candidates, table["cif"], strict=True):
        if not isinstance(cif, str):  # None, or NaN once pandas infers a str column
            files.append(None)
            continue
        name = _cif_name(c.index)
        write_text(cif, cifs / name)
        files.append(f"cifs/{name}")
    table.insert(2, "cif_file", files)
    path = write_table(table, out / "candidates.csv")
    best = result.best
    summary = {
        "formula": result.formula,
        "strategy": result.strategy,
        "seed": result.seed,
        "budget": result.budget,
        "potential": result.potential,
        "n_relaxations": result.n_relaxations,
        "n_resumed": result.n_resumed,
        "n_failed": result.n_failed,
        "n_unique": len(result.unique),
        "best": None
        if best is None
        else {
            "energy_per_atom": best.energy_per_atom,
            "spacegroup": best.spacegroup,
            "origin": best.origin,
            "cif_file": f"cifs/{_cif_name(best.index)}",
        },
        "elemental_references": {
            r.element: {"energy_per_atom": r.energy_per_atom, "built_as": r.kind}
            for r in result.references
        },
        "hull_note": f"energies above hull from {result.potential}, a proxy for DFT",
    }
    write_text(json.dumps(summary, indent=2, allow_nan=True), out / "summary.json")
    plot_energy_vs_evaluation(result, out / "energy_vs_evaluation.png")
    return path


def plot_energy_vs_evaluation(result: CSPResult, path: str | Path) -> Path:
    """Energy per atom of every relaxation in order, and the running best (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = result.by_evaluation()
    x = np.array([c.index + 1 for c in ordered])
    y = np.array([c.energy_per_atom for c in ordered], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = np.isfinite(y)
    ax.scatter(x[ok], y[ok], s=14, label="relaxed candidate")
    if ok.any():
        running = np.minimum.accumulate(np.where(ok, y, np.inf))
        shown = np.isfinite(running)
        ax.step(x[shown], running[shown], where="post", color="C3", label="best so far")
    failed = int((~ok).sum())
    title = f"{result.formula}: {result.strategy}, {len(ordered)} relaxations"
    ax.set_title(title + (f" ({failed} failed)" if failed else ""))
    ax.set_xlabel("evaluation (relaxation)")
    ax.set_ylabel(f"energy per atom (eV, {result.potential})")
    if ok.any():
        ax.legend(loc="upper right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
