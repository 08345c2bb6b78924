"""The logic of the Generate tab's crystal mode, testable without a browser.

The mode runs the same calls as the CLI:
:func:`~matfuse.crystals.search.crystal_structure_prediction` (``matfuse csp``: a formula
in, its lowest-energy structures out) and
:func:`~matfuse.crystals.explore.explore` (``matfuse crystal-search``: a chemical system,
ranked by energy above the hull or by an objective). Why the same calls and not a UI copy:
the journal, the hull, the SUN flags and the output files (``candidates.csv``, ``cifs/``,
the energy-versus-evaluation plot) are then exactly what a researcher gets from the command
line, and the download is that directory.

A run lives in the session's directory under a name made from its settings (not its
budget), so pressing Generate again with a larger budget continues the same search from its
journal, as a rerun of ``matfuse csp`` does. Stop raises from the progress callback; the
relaxations already journaled are then ranked by replaying the journal with the budget cut
to what was done (no new relaxation), so a stopped search shows the same table as a
finished one of that size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from matfuse.app.generate_results import GenerationStopped

logger = logging.getLogger(__name__)

__all__ = [
    "CRYSTAL_BUDGET_RANGE",
    "CrystalOutcome",
    "CrystalRequest",
    "crystal_objective_spec",
    "crystal_strategy_choices",
    "crystal_summary",
    "make_request",
    "run_crystal_design",
    "shown_crystal_table",
    "zip_run",
]

#: Relaxations offered (the expensive oracle: a few CPU seconds each); longer searches
#: belong in the CLI, on a Dask cluster.
CRYSTAL_BUDGET_RANGE = (1, 200)
DEFAULT_CRYSTAL_BUDGET = 10
#: The two tasks, by the label the page shows.
TASKS = {
    "Structure prediction (a formula)": "csp",
    "Chemical-system search (elements)": "explore",
}
#: CPU seconds one relaxation may take on the shared server (a candidate cut short is
#: kept, not converged): one pathological cell must not hold a search for minutes.
RELAX_SECONDS = 120.0
#: At most this many loaded structures become known phases (each is relaxed for the hull).
MAX_REFERENCES = 20
#: Columns of the ranked table shown on the page (the CSV has all of them).
SHOWN_COLUMNS = (
    "rank",
    "formula",
    "spacegroup",
    "energy_per_atom",
    "e_above_hull",
    "score",
    "stable",
    "unique",
    "novel",
    "sun",
    "origin",
    "rmsd",
    "n_atoms",
    "converged",
    "duplicate_of",
    "error",
)


def crystal_strategy_choices() -> list[tuple[str, str]]:
    """Dropdown choices from the crystal generator registry (the CLI's ``--strategy``)."""
    from matfuse.crystals.generators import GENERATORS

    return [(f"{e.name} — {e.description}", e.name) for e in GENERATORS.entries()]


@dataclass(frozen=True)
class CrystalRequest:
    """One search as the page asked for it, checked."""

    task: str  # "csp" or "explore"
    target: str  # a formula (csp) or "Co-Li-O" (explore)
    strategy: str
    budget: int
    seed: int
    z: tuple[int, int]
    relax_steps: int
    objective: dict[str, Any] | None = None
    references: tuple[Any, ...] = field(default=(), compare=False)
    novelty_reference: tuple[Any, ...] | None = field(default=None, compare=False)

    def run_name(self) -> str:
        """The run directory's name: everything but the budget, so a larger budget resumes."""
        from matfuse.materials.structures import structure_hash

        settings = {
            "task": self.task,
            "target": self.target,
            "strategy": self.strategy,
            "seed": self.seed,
            "z": list(self.z),
            "relax_steps": self.relax_steps,
            "objective": self.objective,
            "references": sorted(structure_hash(s) for s in self.references),
            "novelty": len(self.novelty_reference or ()),
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        slug = "".join(ch for ch in self.target if ch.isalnum() or ch == "-")[:40]
        return f"{self.task}-{slug}-{self.strategy}-seed{self.seed}-{digest}"


def crystal_objective_spec(
    *,
    hull_max: float | None = None,
    model: Mapping[str, Any] | None = None,
    require: str = "",
    exclude: str = "",
    low_hhi: bool = False,
) -> dict[str, Any] | None:
    """The crystal objective (see :mod:`matfuse.crystals.objectives`) for the chosen terms,
    or ``None`` when only stability is asked for (the search then ranks by hull distance).

    ``model`` holds ``path``, ``output``, ``min`` and ``max`` of a trained materials model.
    """
    terms: list[dict[str, Any]] = []
    if model is not None:
        low, high = model.get("min"), model.get("max")
        low = None if low is None or (isinstance(low, float) and math.isnan(low)) else low
        high = None if high is None or (isinstance(high, float) and math.isnan(high)) else high
        if low is None and high is None:
            raise ValueError(
                f"Give the window for predicted {model['output']} a minimum and/or a maximum."
            )
        terms.append(
            {
                "property": "model",
                "name": f"pred_{model['output']}",
                "path": str(model["path"]),
                "output": model["output"],
                "min": low,
                "max": high,
            }
        )
    required = [s.strip() for s in require.replace("-", ",").split(",") if s.strip()]
    excluded = [s.strip() for s in exclude.replace("-", ",").split(",") if s.strip()]
    if required or excluded:
        term: dict[str, Any] = {"property": "elements"}
        if required:
            term["require"] = required
        if excluded:
            term["exclude"] = excluded
        terms.append(term)
    if low_hhi:
        terms.append({"property": "hhi", "goal": "minimize"})
    if not terms:
        return None
    hull: dict[str, Any] = {"property": "e_above_hull"}
    if hull_max is not None and not (isinstance(hull_max, float) and math.isnan(hull_max)):
        hull["max"] = float(hull_max)
    return {"terms": [hull, *terms]}


def _int(value: Any, name: str, low: int, high: int) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"Give the {name}.")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name[0].upper()}{name[1:]} must be between {low} and {high:,}.")
    return number


def make_request(
    task_label: str,
    formula: str,
    elements: str,
    strategy: str,
    budget: Any,
    seed: Any,
    z_low: Any,
    z_high: Any,
    relax_steps: Any,
    objective: dict[str, Any] | None = None,
    known: Sequence[Any] = (),
) -> CrystalRequest:
    """A checked :class:`CrystalRequest`; ``ValueError`` with a one-line user message.

    ``known`` are structures the user loaded: those within the formula's or system's
    elements become known phases (hull and substitution sources; at most
    :data:`MAX_REFERENCES`), and all of them the set "novel" is judged against.
    """
    from matfuse.crystals.explore import check_elements
    from matfuse.crystals.generators import GENERATORS, check_composition

    task = TASKS.get(task_label, task_label)
    if task not in TASKS.values():
        raise ValueError(f"Unknown task {task_label!r}.")
    if strategy not in GENERATORS:
        raise ValueError(f"Unknown strategy {strategy!r}.")
    n_budget = _int(budget, "budget (relaxations)", *CRYSTAL_BUDGET_RANGE)
    n_seed = _int(seed if seed is not None else 0, "seed", 0, 2**31 - 1)
    z = (_int(z_low, "smallest Z", 1, 16), _int(z_high, "largest Z", 1, 16))
    if z[0] > z[1]:
        raise ValueError(f"Z from {z[0]} to {z[1]}: the smallest must not exceed the largest.")
    steps = _int(relax_steps, "relaxation steps", 1, 2000)
    if task == "csp":
        if not (formula or "").strip():
            raise ValueError("Type a formula, e.g. NaCl or SrTiO3.")
        target = "".join(formula.split())  # as written: C8 is not C
        comp = check_composition(target, z)
        symbols = {el.symbol for el in comp.elements}
        objective = None  # a CSP ranks by energy: the objective is for system searches
    else:
        if not (elements or "").strip():
            raise ValueError("Type the elements of the chemical system, e.g. Li,Co,O.")
        listed = check_elements(elements)
        target, symbols = "-".join(listed), set(listed)
    within = [s for s in known if s is not None and {el.symbol for el in s.composition} <= symbols]
    return CrystalRequest(
        task=task,
        target=target,
        strategy=GENERATORS.resolve(strategy),
        budget=n_budget,
        seed=n_seed,
        z=z,
        relax_steps=steps,
        objective=objective,
        references=tuple(within[:MAX_REFERENCES]),
        novelty_reference=tuple(s for s in known if s is not None) if known else None,
    )


@dataclass
class CrystalOutcome:
    """A finished or stopped search and the directory holding its files."""

    result: Any  # CSPResult or ExploreResult
    out_dir: Path
    stopped: bool = False


def _journaled(out_dir: Path) -> int:
    from matfuse.crystals.journal import JOURNAL_NAME, Journal

    path = out_dir / JOURNAL_NAME
    return len(Journal(path).of_kind("candidate")) if path.exists() else 0


def _search(
    request: CrystalRequest,
    out_dir: Path,
    budget: int,
    on_progress: Callable[..., object] | None,
    relaxer: Any,
) -> Any:
    options: dict[str, Any] = {
        "strategy": request.strategy,
        "budget": budget,
        "seed": request.seed,
        "z": request.z,
        "relax_steps": request.relax_steps,
        "out_dir": out_dir,
        "on_progress": on_progress,
        "references": list(request.references),
        "relaxer": relaxer,
        "relax_seconds": RELAX_SECONDS,
    }
    if relaxer is not None:
        options["potential"] = "custom"
    if request.task == "csp":
        from matfuse.crystals.search import crystal_structure_prediction

        return crystal_structure_prediction(request.target, **options)
    from matfuse.crystals.explore import explore

    novelty = list(request.novelty_reference) if request.novelty_reference is not None else None
    return explore(
        request.target, objective=request.objective, novelty_reference=novelty, **options
    )


def run_crystal_design(
    request: CrystalRequest,
    root: Path,
    on_progress: Callable[..., object] | None = None,
    relaxer: Any = None,
) -> CrystalOutcome:
    """Run (or resume) ``request`` in ``root / request.run_name()``.

    A :class:`~matfuse.app.generate_results.GenerationStopped` from ``on_progress`` ends the
    relaxations; what the journal holds is then ranked and written as a finished search of
    that size (``stopped=True``). With nothing journaled the stop propagates. ``relaxer``
    replaces the potential (tests).
    """
    out_dir = Path(root) / request.run_name()
    try:
        result = _search(request, out_dir, request.budget, on_progress, relaxer)
        return CrystalOutcome(result, out_dir)
    except GenerationStopped:
        done = min(_journaled(out_dir), request.budget)
        if done == 0:
            raise
        logger.info("stopped after %d relaxations; ranking them", done)
        result = _search(request, out_dir, done, None, relaxer)
        return CrystalOutcome(result, out_dir, stopped=True)


def shown_crystal_table(result: Any) -> pd.DataFrame:
    """The ranked candidates as displayed (no CIF text; rounded numbers; rank from 1)."""
    table = result.table()
    table["rank"] = table["rank"] + 1
    columns = [c for c in SHOWN_COLUMNS if c in table.columns]
    out = table[columns].copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(4)
    return out


def crystal_summary(outcome: CrystalOutcome, seconds: float) -> str:
    """The status line of a finished or stopped search: what was done and what was found."""
    result = outcome.result
    what = "Stopped" if outcome.stopped else "Done"
    text = (
        f"**{what}:** {result.n_relaxations:,} relaxations of **{result.formula}** "
        f"({result.strategy}, seed {result.seed}; {result.n_resumed:,} from an earlier run, "
        f"{result.n_failed:,} failed) in {seconds:.1f} s with {result.potential}."
    )
    best = result.best
    if best is not None:
        text += (
            f" Best: **{best.relaxed.composition.reduced_formula}**, {best.spacegroup}, "
            f"{best.energy_per_atom:.3f} eV/atom, {best.e_above_hull:.3f} eV/atom above "
            "the hull."
        )
    counts = getattr(result, "counts", None)
    if callable(counts):
        c = counts()
        text += (
            f"\n\n{c['unique']} unique, {c['stable']} stable (≤ {result.stability_threshold} "
            f"eV/atom above the hull), {c['stable_unique']} stable and unique, "
            f"**{c['sun']} SUN**"
            + (
                f" (novel against the {result.n_novelty_reference:,} loaded structures)."
                if result.n_novelty_reference
                else " (novel: no reference set was given, so every structure counts as new)."
            )
        )
    return text + (
        f"\n\nThe hull is made of {result.potential} energies of the elements, the given "
        "phases and the phases found: a proxy for a DFT hull, not a DFT hull."
    )


def energy_curve(result: Any) -> pd.DataFrame | None:
    """Energy per atom of each relaxation in evaluation order, and the best so far
    (``None`` when nothing relaxed: the plot must never be given an empty frame)."""
    rows: list[dict[str, Any]] = []
    best = math.inf
    for i, c in enumerate(result.by_evaluation(), start=1):
        if c.relaxed is None or not math.isfinite(c.energy_per_atom):
            continue
        best = min(best, c.energy_per_atom)
        rows.append({"relaxation": i, "energy": c.energy_per_atom, "series": "candidate"})
        rows.append({"relaxation": i, "energy": best, "series": "best so far"})
    return curve_frame(rows) if rows else None


def curve_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of ``relaxation``/``energy``/``series`` with their dtypes fixed even when empty
    (the plot takes an empty object column for a category and keeps that axis type)."""
    frame = pd.DataFrame(list(rows), columns=["relaxation", "energy", "series"])
    return frame.astype({"relaxation": "int64", "energy": "float64", "series": "string"})


def zip_run(out_dir: Path, dest: Path) -> Path:
    """The run's files (``candidates.csv``, ``cifs/``, plot, summaries) as one zip."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(out_dir.rglob("*")):
            if path.is_file() and path.parent.name != "views":
                archive.write(path, path.relative_to(out_dir).as_posix())
    return dest
