"""The crystal mode's third task, sampling a learned generator, testable without a browser.

This is the page's ``matfuse crystal-generate``: a request checked as the CLI checks its
options, then :func:`~matfuse.crystals.diffusion.outputs.generate_table` and
:func:`~matfuse.crystals.diffusion.outputs.write_generated`, the calls the CLI makes. Why the
same calls: the table, the validity flags and the files (``candidates.csv``, ``cifs/``) are
then what a researcher gets from the command line, and the download is that directory.

Sampling has no progress of its own (one batched integration of the flow), so the worker
reports its stages (loading, sampling, relaxing, writing); Stop is honoured between them.
A run lives in the session's directory under a name made of all its settings: sampling is
a pure function of them, so pressing Generate again redraws the same structures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "MODES",
    "SAMPLE_RANGE",
    "SAMPLE_TASK",
    "SampleOutcome",
    "SampleRequest",
    "error_status",
    "first_valid_structure",
    "make_sample_request",
    "model_choices",
    "run_sampling",
    "sample_summary",
    "shown_sample_table",
    "split_targets",
]

#: The task's label on the page (beside the two relaxation searches).
SAMPLE_TASK = "Sample a learned generator"
#: Mode labels and what they mean (``None``: de novo, the composition generated too).
DE_NOVO = "De novo (the model picks the composition)"
CSP = "A formula (structure prediction)"
MODES = {DE_NOVO: "de-novo", CSP: "csp"}
#: Structures per run: sampling takes milliseconds each, relaxing them seconds each.
SAMPLE_RANGE = (1, 500)
#: Most structures when each is relaxed too (about 3-10 CPU s each on the shared server).
MAX_RELAXED = 50
DEFAULT_SAMPLES = 50
#: Most atoms per cell, as the CLI's ``--max-atoms`` default.
MAX_ATOMS = 40
#: FIRE steps when the structures are relaxed (fewer than the CLI's 200: the page waits).
RELAX_STEPS = 100
#: Columns of the table shown (the CSV has all of them, CIFs included).
SHOWN_COLUMNS = (
    "index",
    "formula",
    "spacegroup",
    "valid",
    "problem",
    "smact_valid",
    "energy_per_atom",
    "rmsd",
    "converged",
    "error",
    "origin",
)


def model_choices() -> list[tuple[str, str]]:
    """Dropdown choices from the crystal generator registry (the CLI's ``--model``)."""
    from matfuse.crystals.diffusion.persistence import CRYSTAL_MODELS

    return [(e.name, e.name) for e in CRYSTAL_MODELS.entries()]


@dataclass(frozen=True)
class SampleRequest:
    """One sampling run as the page asked for it, checked (the CLI's options)."""

    model: str  # a registered name or a model directory
    formula: str | None  # None: de novo
    n: int
    seed: int
    elements: tuple[str, ...] | None = None
    n_atoms: int | None = None
    conditions: Mapping[str, float | str] = field(default_factory=dict)
    guidance: float | None = None
    relax: bool = False
    steps: int | None = None  # ODE steps; None: the model's own

    @property
    def mode(self) -> str:
        return "de-novo" if self.formula is None else "csp"

    def run_name(self) -> str:
        """The run directory's name, from every setting (the same settings, the same run)."""
        settings = {
            "model": self.model,
            "formula": self.formula,
            "n": self.n,
            "seed": self.seed,
            "elements": list(self.elements or ()),
            "n_atoms": self.n_atoms,
            "conditions": dict(self.conditions),
            "guidance": self.guidance,
            "relax": self.relax,
            "steps": self.steps,
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        what = "".join(ch for ch in (self.formula or "denovo") if ch.isalnum())[:40]
        model = "".join(ch for ch in Path(self.model).name if ch.isalnum() or ch in "-_")[:30]
        return f"sample-{what}-{model}-seed{self.seed}-{digest}"


def _int(value: Any, name: str, low: int, high: int) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"Give the {name}.")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name[0].upper()}{name[1:]} must be between {low} and {high:,}.")
    return number


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def split_targets(text: str) -> list[str]:
    """``NAME=VALUE`` items from lines and/or commas; a piece without ``=`` belongs to the
    item before it, so ``chemical_system=Sr,Ti,O`` stays one target."""
    items: list[str] = []
    for piece in (text or "").replace("\n", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        if "=" not in piece and items:
            items[-1] += f",{piece}"
        else:
            items.append(piece)
    return items


def _plain(message: str) -> str:
    """A library message without the CLI's option names."""
    return message.replace("--condition ", "target ")


def make_sample_request(
    model: str,
    mode_label: str,
    formula: str,
    n: Any,
    seed: Any,
    elements: str = "",
    n_atoms: Any = None,
    targets: str = "",
    guidance: Any = 1.0,
    relax: bool = False,
    steps: int | None = None,
) -> SampleRequest:
    """A checked :class:`SampleRequest`; ``ValueError`` with a one-line user message.

    What needs the model itself (de novo ability, its conditions) is checked when the run
    starts (:func:`check_model`), in the worker, as loading it takes a moment.
    """
    from matfuse.crystals.diffusion.conditions import parse_conditions
    from matfuse.crystals.diffusion.sampling import element_mask
    from matfuse.crystals.generators import check_composition

    if not (model or "").strip():
        raise ValueError("Choose a generator model.")
    mode = MODES.get(mode_label, mode_label)
    if mode not in MODES.values():
        raise ValueError(f"Unknown mode {mode_label!r}.")
    count = _int(n, "number of structures", *SAMPLE_RANGE)
    if relax and count > MAX_RELAXED:
        raise ValueError(
            f"Relaxing {count} structures would keep the server busy for minutes: "
            f"relax at most {MAX_RELAXED}, or sample without relaxing."
        )
    n_seed = _int(0 if _blank(seed) else seed, "seed", 0, 2**31 - 1)
    target: str | None = None
    allowed: tuple[str, ...] | None = None
    atoms: int | None = None
    if mode == "csp":
        if not (formula or "").strip():
            raise ValueError("Type a formula, e.g. SrTiO3.")
        target = "".join(formula.split())  # as written: the cell holds one formula unit
        check_composition(target, (1, 1), MAX_ATOMS)
    else:
        listed = [e.strip() for e in (elements or "").split(",") if e.strip()]
        element_mask(listed)  # an unknown symbol fails here, in one line
        allowed = tuple(listed) or None
        if not _blank(n_atoms) and n_atoms != 0:  # an empty number on the page is 0
            atoms = _int(n_atoms, "atoms per cell", 1, MAX_ATOMS)
    try:
        conditions = parse_conditions(split_targets(targets))
    except ValueError as err:
        raise ValueError(_plain(str(err))) from None
    scale: float | None = None
    if conditions:  # the guidance scale means nothing without a target
        scale = 1.0 if _blank(guidance) else float(guidance)
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"Guidance scale {guidance}: must be 0 or more.")
    return SampleRequest(
        model=model.strip(),
        formula=target,
        n=count,
        seed=n_seed,
        elements=allowed,
        n_atoms=atoms,
        conditions=conditions,
        guidance=scale,
        relax=bool(relax),
        steps=steps,
    )


def check_model(request: SampleRequest) -> Any:
    """The loaded (cached) model, after the CLI's checks of what the request asks of it."""
    from matfuse.crystals.diffusion.sampling import get_model

    flow = get_model(request.model)
    if request.formula is None and not flow.de_novo:
        raise ValueError(
            f"Model {request.model!r} is CSP only: choose 'A formula', or a de novo model."
        )
    if request.conditions:
        if flow.conditions is None:
            raise ValueError(
                f"Model {request.model!r} was trained without property conditions: "
                "clear the property targets."
            )
        try:
            flow.conditions.row(dict(request.conditions))  # unknown names fail here
        except ValueError as err:
            raise ValueError(_plain(str(err))) from None
    return flow


@dataclass
class SampleOutcome:
    """A finished run: the generated table (as the CLI writes it) and its directory."""

    request: SampleRequest
    table: pd.DataFrame
    out_dir: Path


def run_sampling(
    request: SampleRequest,
    root: Path,
    on_progress: Callable[..., object] | None = None,
) -> SampleOutcome:
    """Sample ``request`` into ``root / request.run_name()`` as ``crystal-generate`` does.

    ``on_progress(stage)`` is called before each stage; whatever it raises (the page's
    stop) ends the run there. ``ValueError`` (one line) for what the model cannot do.
    """
    from matfuse.crystals.diffusion.outputs import generate_table, write_generated
    from matfuse.crystals.generators import check_composition

    def report(stage: str) -> None:
        logger.info("%s: %s", request.run_name(), stage)
        if on_progress is not None:
            on_progress(stage)

    report("loading the model")
    flow = check_model(request)
    composition = None
    if request.formula is not None:
        composition = check_composition(request.formula, (1, 1), MAX_ATOMS)
    report(
        f"sampling {request.n} structures"
        + (
            f" and relaxing them with CHGNet ({RELAX_STEPS} FIRE steps each)"
            if request.relax
            else ""
        )
    )
    table = generate_table(
        flow,
        composition,
        n=request.n,
        seed=request.seed,
        steps=request.steps,
        relax=request.relax,
        relax_steps=RELAX_STEPS,
        model_label=request.model,
        elements=list(request.elements) if request.elements else None,
        conditions=dict(request.conditions) or None,
        guidance=request.guidance,
        n_atoms=request.n_atoms,
    )
    report("writing the files")
    out_dir = Path(root) / request.run_name()
    write_generated(table, out_dir)
    return SampleOutcome(request, table, out_dir)


def shown_sample_table(table: pd.DataFrame) -> pd.DataFrame:
    """The generated structures as displayed (no CIF text; rounded numbers)."""
    columns = [c for c in SHOWN_COLUMNS if c in table.columns]
    out = table[columns].copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(4)
    return out


def first_valid_structure(table: pd.DataFrame) -> tuple[int, Any] | None:
    """``(index, structure)`` of the first valid row (the lowest energy when relaxed)."""
    from pymatgen.core import Structure

    valid = table[table["valid"].astype(bool)]
    if valid.empty:
        return None
    row = valid.iloc[0]
    return int(row["index"]), Structure.from_str(str(row["cif"]), fmt="cif")


def sample_summary(outcome: SampleOutcome, seconds: float) -> str:
    """The status line of a finished run: what was sampled and how much of it is valid."""
    request, table = outcome.request, outcome.table
    n, n_valid = len(table), int(table["valid"].astype(bool).sum())
    what = f"of **{request.formula}**" if request.formula else "de novo"
    guided = ""
    if request.conditions:
        targets = ", ".join(f"{k}={v}" for k, v in request.conditions.items())
        guided = f", guided to {targets} at scale {request.guidance:g}"
    text = (
        f"**Done:** {n} structures {what} from **{request.model}** (seed {request.seed}"
        f"{guided}) in {seconds:.1f} s: **{n_valid} valid** ({n_valid / max(n, 1):.0%})."
    )
    if request.relax and "energy_per_atom" in table.columns:
        energies = pd.to_numeric(table["energy_per_atom"], errors="coerce")
        relaxed = int(energies.notna().sum())
        text += f" Relaxed with CHGNet: {relaxed} of {n}"
        if relaxed:
            text += f", lowest {float(energies.min()):.3f} eV/atom"
        text += "."
    rule = "no two atoms closer than 0.5 Å"
    if request.formula is None:
        rule += " and a charge-balanced composition (SMACT)"
    return text + f"\n\nValid: {rule}; invalid cells are kept and flagged, never dropped."


def error_status(err: BaseException) -> str:
    """One status line for a run that could not be made: a user's mistake (``ValueError``)
    as its message, anything else with its type; never a traceback."""
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, ValueError):
        return f"**Cannot sample:** {message}"
    return f"**Sampling failed:** {type(err).__name__}: {message}"
