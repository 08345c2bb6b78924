"""``crystal-train`` and ``crystal-generate``: the learned crystal generator (CSP mode)."""

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
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW, after warm-up).")] = 5e-4,
    hidden: Annotated[int, typer.Option(help="Width of the denoiser.")] = 128,
    layers: Annotated[int, typer.Option(help="Message-passing layers.")] = 4,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    column: Annotated[str, typer.Option(help="Column holding the CIF text.")] = "cif",
    max_atoms: Annotated[int, typer.Option(help="Skip cells with more atoms.")] = 64,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = 1,
) -> None:
    """Train a CSP flow-matching crystal generator on TABLE; `--resume` continues exactly.

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
        _threads(threads)
        from matfuse.crystals.diffusion.data import crystal_set_from_table

        crystals = crystal_set_from_table(table, column=column, max_atoms=max_atoms)

    from matfuse.crystals.diffusion.training import train_crystal_flow

    if crystals.skipped:
        err_console.print(f"{len(crystals.skipped)} rows skipped (bad or unusable structures)")
    config = TrainConfig(
        batch_size=batch_size,
        lr=lr,
        max_steps=max_steps,
        max_minutes=max_minutes,
        checkpoint_every=checkpoint_every,
        seed=seed,
    )
    with user_errors():
        result = train_crystal_flow(
            crystals,
            out,
            config=config,
            architecture=DenoiserConfig(hidden=hidden, layers=layers),
            resume=resume,
            device=device,
            name=out.name,
            data_note=f"{table} ({len(crystals)} structures, {len(crystals.skipped)} skipped)",
        )
    err_console.print(
        f"{result.steps} steps ({result.steps - result.resumed_from} this run), "
        f"loss {result.last_loss:.4f}, {result.cpu_seconds:.0f} CPU s -> {result.model_dir}"
    )
    typer.echo(json.dumps({"steps": result.steps, "model": str(result.model_dir)}))


@app.command("crystal-generate")
def crystal_generate(
    formula: Annotated[str, typer.Option("--formula", help="Composition, e.g. SrTiO3 (CSP mode).")],
    model: Annotated[
        str, typer.Option(help="Registered name (perov5) or model directory.")
    ] = "perov5",
    n: Annotated[int, typer.Option("--n", help="Structures to generate.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the sampling noise.")] = 0,
    z: Annotated[int, typer.Option("--z", help="Formula units per cell.")] = 1,
    steps: Annotated[int | None, typer.Option(help="ODE steps (default: the model's).")] = None,
    relax: Annotated[
        bool, typer.Option("--relax", help="Relax each with CHGNet, rank by energy.")
    ] = False,
    relax_steps: Annotated[int, typer.Option(help="FIRE steps per relaxation.")] = 200,
    max_atoms: Annotated[int, typer.Option(help="Most atoms per cell.")] = 40,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("generated"),
) -> None:
    """Generate crystal structures of a composition with a learned generator.

    Writes OUT/candidates.csv (`cif`, `cif_file`, `formula`, `spacegroup`, `origin`, `valid`,
    `problem`; with `--relax` the relaxed CIF, `energy_per_atom`, `rmsd` and `potential`, best
    first) and one CIF per candidate under OUT/cifs/, as `matfuse csp` does.
    """
    from matfuse.crystals.generators import check_composition

    with user_errors():
        composition = check_composition(formula, (z, z), max_atoms)
        if n < 1:
            raise ValueError(f"--n {n}: need at least 1 structure")
        if steps is not None and steps < 1:
            raise ValueError(f"--steps {steps}: need at least 1")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")
        _threads(threads)
        from matfuse.crystals.diffusion.sampling import get_model

        flow = get_model(model)

    from matfuse.crystals.diffusion.outputs import generate_table, write_generated

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
    )
    path = write_generated(table, out)
    n_valid = int(table["valid"].sum())
    err_console.print(
        f"{len(table)} structures ({n_valid} valid) of {composition.reduced_formula} -> {path}"
    )
