"""``crystal-train`` and ``crystal-generate``: the learned crystal generator (CSP and de novo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from matfuse.cli.common import app, err_console, user_errors


def _threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(max(1, n))


#: Learning rates by measurement: a fresh model, and adapters fine-tuned on a frozen base
#: (zero-initialised mixins learn slowly at the base rate; benchmarks/crystal_adapters.py).
DEFAULT_LR, DEFAULT_ADAPTER_LR = 5e-4, 5e-3


def _default_lr(run: Path | None, adapting: bool) -> float:
    """The run's own rate when resuming it, else the default for the kind of training."""
    from matfuse.crystals.diffusion.training import _checkpoint_dir

    ckpt = _checkpoint_dir(run) if run is not None else None
    if ckpt is not None:
        saved = json.loads((ckpt / "state.json").read_text())
        return float(saved["train"]["lr"])
    return DEFAULT_ADAPTER_LR if adapting else DEFAULT_LR


@app.command("crystal-train")
def crystal_train(
    table: Annotated[Path, typer.Argument(help="Table with a `cif` column (CSV, parquet...).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory (checkpoint, log, model).")
    ],
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (checkpoint and export) after this long.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after this many steps in all.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of initialisation, batches and noise.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Crystals per step.")] = 128,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Learning rate (AdamW, after warm-up); default 5e-4, or 5e-3 with "
            "--adapt-from (adapters start at zero: measured in benchmarks/crystal_adapters.py), "
            "or the run's own when resuming.",
        ),
    ] = None,
    decay_steps: Annotated[
        int | None,
        typer.Option(help="Cosine-decay the learning rate to 5% of --lr at this step."),
    ] = None,
    hidden: Annotated[int, typer.Option(help="Width of the denoiser.")] = 128,
    layers: Annotated[int, typer.Option(help="Message-passing layers.")] = 4,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    column: Annotated[str, typer.Option(help="Column holding the CIF text.")] = "cif",
    max_atoms: Annotated[int, typer.Option(help="Skip cells with more atoms.")] = 64,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = 1,
    de_novo: Annotated[
        bool,
        typer.Option("--de-novo", help="Also learn atom types (one model for CSP and de novo)."),
    ] = False,
    condition_on: Annotated[
        list[str] | None,
        typer.Option(
            "--condition-on",
            help="Numeric column, or space_group / chemical_system (derived from each "
            "structure), to condition on (repeatable).",
        ),
    ] = None,
    p_csp: Annotated[
        float, typer.Option(help="De novo: share of cells trained with all types given.")
    ] = 0.5,
    p_drop: Annotated[
        float, typer.Option(help="Share of cells trained without their conditions (CFG).")
    ] = 0.2,
    init_from: Annotated[
        Path | None, typer.Option(help="Warm-start a new run from this model directory.")
    ] = None,
    adapt_from: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune this model (name or directory) with its weights frozen: the "
            "--condition-on properties become adapters, the only weights trained.",
        ),
    ] = None,
) -> None:
    """Train a flow-matching crystal generator on TABLE; `--resume` continues exactly.

    `--de-novo` adds a type head (masked discrete flow matching over elements), so the model
    generates compositions too; `--condition-on heat_ref` learns classifier-free guidance on
    that column (`space_group` and `chemical_system` are read off the structures).
    `--adapt-from perov5 --condition-on band_gap` fine-tunes a trained model on a small
    labelled table MatterGen's way (base frozen, adapters trained; architecture options are
    the base's). Under `torchrun --nproc-per-node N` the steps are data-parallel.

    Bad rows (unparsable CIF, disordered, too many atoms) are skipped and counted. Writes
    OUT/checkpoint/, OUT/metrics.jsonl (one line per step) and OUT/model/ (JSON +
    safetensors), which `crystal-generate --model OUT` loads.
    """
    from matfuse.crystals.diffusion.model import DenoiserConfig
    from matfuse.crystals.diffusion.training import TrainConfig, _checkpoint_dir

    with user_errors():
        if not table.exists():
            raise ValueError(f"{table}: no such file")
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"--device {device!r}: choose cpu or cuda")
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--device cuda: no CUDA device is available")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")
        if _checkpoint_dir(out) is not None and not resume:
            raise ValueError(f"--out {out} already holds a run; add --resume to continue it")
        if batch_size < 1 or hidden < 8 or layers < 1:
            raise ValueError("--batch-size, --hidden and --layers must be positive")
        if not (0.0 <= p_csp <= 1.0 and 0.0 <= p_drop <= 1.0):
            raise ValueError("--p-csp and --p-drop are probabilities in [0, 1]")
        from matfuse.crystals.diffusion.persistence import resolve_model_path

        if init_from is not None:
            init_from = resolve_model_path(init_from)
        adapt_path = None
        if adapt_from is not None:
            if init_from is not None:
                raise ValueError("give --init-from or --adapt-from, not both")
            if not condition_on and not resume:
                raise ValueError("--adapt-from needs at least one --condition-on to learn")
            adapt_path = resolve_model_path(adapt_from)
        _threads(threads)
        if lr is None:
            lr = _default_lr(out if resume else None, adapting=adapt_path is not None)
        from matfuse.crystals.diffusion.data import crystal_set_from_table

        crystals = crystal_set_from_table(
            table, column=column, max_atoms=max_atoms, properties=tuple(condition_on or ())
        )

    from matfuse.crystals.diffusion.training import train_crystal_flow

    if crystals.skipped:
        err_console.print(f"{len(crystals.skipped)} rows skipped (bad or unusable structures)")
    config = TrainConfig(
        batch_size=batch_size,
        lr=lr,
        decay_steps=decay_steps,
        max_steps=max_steps,
        max_minutes=max_minutes,
        checkpoint_every=checkpoint_every,
        seed=seed,
        p_csp=p_csp,
        p_drop=p_drop,
    )
    with user_errors():
        result = train_crystal_flow(
            crystals,
            out,
            config=config,
            architecture=DenoiserConfig(hidden=hidden, layers=layers, type_head=de_novo),
            resume=resume,
            device=device,
            name=out.name,
            data_note=f"{table} ({len(crystals)} structures, {len(crystals.skipped)} skipped)",
            init_from=init_from,
            adapt_from=adapt_path,
        )
    err_console.print(
        f"{result.steps} steps ({result.steps - result.resumed_from} this run), "
        f"loss {result.last_loss:.4f}, {result.cpu_seconds:.0f} CPU s -> {result.model_dir}"
    )
    typer.echo(json.dumps({"steps": result.steps, "model": str(result.model_dir)}))


@app.command("crystal-export")
def crystal_export(
    source: Annotated[str, typer.Argument(help="Training run (--out of crystal-train) or model.")],
    out: Annotated[Path, typer.Argument(help="Model directory to write (a MODEL_CARD.md stays).")],
    name: Annotated[str | None, typer.Option(help="Name the model reports.")] = None,
    steps: Annotated[
        int | None, typer.Option(help="Default sampling steps stored with the model.")
    ] = None,
) -> None:
    """Export a trained crystal generator as a model directory (JSON + safetensors + manifest)."""
    from matfuse.crystals.diffusion.persistence import export_crystal_model

    with user_errors():
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out} is a file; give a directory")
        path = export_crystal_model(source, out, name=name, steps=steps)
    err_console.print(f"exported {source} -> {path}")


@app.command("crystal-generate")
def crystal_generate(
    formula: Annotated[
        str | None,
        typer.Option("--formula", help="Composition, e.g. SrTiO3 (CSP); omit for de novo."),
    ] = None,
    model: Annotated[
        str, typer.Option(help="Registered name (perov5) or model directory.")
    ] = "perov5",
    n: Annotated[int, typer.Option("--n", help="Structures to generate.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the sampling noise.")] = 0,
    z: Annotated[int, typer.Option("--z", help="Formula units per cell (CSP).")] = 1,
    elements: Annotated[
        str | None,
        typer.Option(help="De novo: allowed elements, comma-separated (e.g. Sr,Ti,O,N)."),
    ] = None,
    n_atoms: Annotated[
        int | None, typer.Option(help="De novo: atoms per cell (default: drawn as in training).")
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition",
            help="Target NAME=VALUE: heat_ref=-0.5, space_group=Pm-3m, chemical_system=Sr-Ti-O.",
        ),
    ] = None,
    guidance: Annotated[
        float | None,
        typer.Option(help="Classifier-free guidance scale (1 = conditional; >1 stronger)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="ODE steps (default: the model's).")] = None,
    batch_size: Annotated[
        int, typer.Option(help="Cells integrated together (memory vs speed; part of the seed).")
    ] = 256,
    relax: Annotated[
        bool, typer.Option("--relax", help="Relax each with CHGNet, rank by energy.")
    ] = False,
    relax_steps: Annotated[int, typer.Option(help="FIRE steps per relaxation.")] = 200,
    max_atoms: Annotated[int, typer.Option(help="Most atoms per cell.")] = 40,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("generated"),
) -> None:
    """Generate crystal structures with a learned generator: of a composition (`--formula`,
    CSP) or de novo (no `--formula`: atom count, elements, lattice and positions generated).

    Writes OUT/candidates.csv (`cif`, `cif_file`, `formula`, `spacegroup`, `origin`, `valid`,
    `problem`, `smact_valid`; with `--relax` the relaxed CIF, `energy_per_atom`, `rmsd` and
    `potential`, best first) and one CIF per candidate under OUT/cifs/, as `matfuse csp`
    does. De novo rows are valid when no two atoms are closer than 0.5 A and SMACT finds the
    composition charge-balanced.
    """
    from matfuse.crystals.generators import check_composition

    with user_errors():
        composition = None
        if formula is not None:
            composition = check_composition(formula, (z, z), max_atoms)
            if elements or n_atoms is not None:
                raise ValueError("--elements and --n-atoms are for de novo mode (no --formula)")
        if n < 1:
            raise ValueError(f"--n {n}: need at least 1 structure")
        if steps is not None and steps < 1:
            raise ValueError(f"--steps {steps}: need at least 1")
        if batch_size < 1:
            raise ValueError(f"--batch-size {batch_size}: need at least 1")
        if n_atoms is not None and not 1 <= n_atoms <= max_atoms:
            raise ValueError(f"--n-atoms {n_atoms}: choose 1 to {max_atoms}")
        if guidance is not None and guidance < 0:
            raise ValueError(f"--guidance {guidance}: must be >= 0")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")
        from matfuse.crystals.diffusion.conditions import parse_conditions
        from matfuse.crystals.diffusion.sampling import element_mask, get_model

        targets = parse_conditions(condition or [])
        allowed = [e.strip() for e in elements.split(",") if e.strip()] if elements else None
        element_mask(allowed)  # unknown symbols fail here, in one line
        _threads(threads)
        flow = get_model(model)
        if composition is None and not flow.de_novo:
            raise ValueError(
                f"model {model!r} is CSP only: give --formula, or train one with --de-novo"
            )
        if targets:
            if flow.conditions is None:
                raise ValueError(f"model {model!r} was trained without property conditions")
            flow.conditions.row(targets)  # unknown property names fail here

    from matfuse.crystals.diffusion.outputs import generate_table, write_generated

    with user_errors():
        table = generate_table(
            flow,
            composition,
            n=n,
            seed=seed,
            z=z,
            steps=steps,
            relax=relax,
            relax_steps=relax_steps,
            model_label=model,
            elements=allowed,
            conditions=targets or None,
            guidance=guidance,
            n_atoms=n_atoms,
            batch_size=batch_size,
        )
    path = write_generated(table, out)
    n_valid = int(table["valid"].sum())
    what = composition.reduced_formula if composition is not None else "de novo crystals"
    err_console.print(f"{len(table)} structures ({n_valid} valid) of {what} -> {path}")
