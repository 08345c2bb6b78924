"""``clm-train``: train, resume or fine-tune the chemical language model on a SMILES corpus."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from matfuse.cli.common import app, err_console, user_errors


@app.command("clm-train")
def clm_train(
    data: Annotated[Path, typer.Argument(help="SMILES corpus (.smi/.txt/.csv, may be .gz).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumes if present).")],
    arch: Annotated[str, typer.Option(help="gru | lstm | transformer")] = "gru",
    d_model: Annotated[int, typer.Option(help="Hidden width.")] = 256,
    layers: Annotated[int, typer.Option(help="Recurrent or transformer layers.")] = 3,
    steps: Annotated[int, typer.Option(help="Length of the learning-rate schedule.")] = 100_000,
    batch_size: Annotated[int, typer.Option(help="Molecules per step.")] = 128,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    max_minutes: Annotated[
        float | None, typer.Option(help="Train this long in this invocation, then export.")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Require an existing run directory and continue it.")
    ] = False,
    init: Annotated[
        str | None,
        typer.Option(help="Fine-tune from a model: `clm` (shipped) or a model directory."),
    ] = None,
    heldout: Annotated[int, typer.Option(help="Corpus rows held out (a random sample).")] = 2000,
    stream_order: Annotated[
        str,
        typer.Option(
            help="shuffled (rows permuted across the corpus each epoch) | file (file order, "
            "for corpora shuffled beforehand or too big for memory)"
        ),
    ] = "shuffled",
    eval_every: Annotated[int, typer.Option(help="Steps between evaluations.")] = 500,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (data order, initialisation).")] = 0,
    start_epoch: Annotated[
        int,
        typer.Option(
            help="Epoch the data stream starts at: with --init from a run on the same corpus, "
            "its next unseen epoch gives a fresh order and keeps the held-out rows."
        ),
    ] = 0,
) -> None:
    """Train the autoregressive SMILES model; rerun the same command (or `--resume`) to continue.

    The run directory keeps `checkpoint/` (exact resume, survives kill -9), `metrics.jsonl`,
    `best/` (lowest held-out NLL) and `model/` (last state); both load with `load_clm`.
    """
    from matfuse.foundation.clm import ARCHITECTURES, CLMConfig
    from matfuse.pretrain.clm import CLMTrainConfig
    from matfuse.pretrain.data import STREAM_ORDERS

    with user_errors():
        if not data.exists():
            raise FileNotFoundError(f"corpus {data} does not exist")
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHITECTURES)}")
        for name, value in (
            ("steps", steps),
            ("batch-size", batch_size),
            ("d-model", d_model),
            ("layers", layers),
        ):
            if value <= 0:
                raise ValueError(f"--{name} must be positive, got {value}")
        if start_epoch < 0:
            raise ValueError(f"--start-epoch must be 0 or more, got {start_epoch}")
        if lr <= 0 or (max_minutes is not None and max_minutes <= 0):
            raise ValueError("--lr and --max-minutes must be positive")
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
        if stream_order not in STREAM_ORDERS:
            raise ValueError(
                f"unknown --stream-order {stream_order!r}; choose {', '.join(STREAM_ORDERS)}"
            )
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--device cuda asked for, but no CUDA device is available")
        if resume and not (out / "run.json").exists():
            raise FileNotFoundError(f"--resume: {out} holds no run (no run.json)")
        if resume and init:
            raise ValueError("--init starts a new run; it cannot be combined with --resume")
        if init and (out / "run.json").exists():
            raise ValueError(f"{out} already holds a run; fine-tune into a new directory")
        if init:
            from matfuse.foundation.clm import CONFIG_FILE, clm_dir

            if not (clm_dir(init) / CONFIG_FILE).exists():
                raise FileNotFoundError(f"--init {init}: no language model there")
        model_cfg = CLMConfig(arch=arch, d_model=d_model, n_layers=layers)
    from matfuse.pretrain.clm import train_clm

    train_cfg = CLMTrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        max_minutes=max_minutes,
        n_heldout=heldout,
        stream_order=stream_order,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        threads=threads,
        device=device,
        seed=seed,
        start_epoch=start_epoch,
    )
    command = " ".join(["matfuse", *sys.argv[1:]])
    best = train_clm(data, out, model_cfg, train_cfg, init=init, command=command, progress=True)
    err_console.print(f"best model written to {best} (last state in {out / 'model'})")


def decode_clm(
    out: Path,
    input: Path | None,
    model: str,
    path: Path | None,
    sample: int,
    temperature: float,
    seed: int,
    allow_invalid: bool,
) -> None:
    """``matfuse decode --model clm --sample N``: N SMILES sampled from the language model.

    The model has no latent space, so it only samples; ``--temperature 0`` (decode's
    default, greedy for the autoencoders) means plain sampling at temperature 1 here, since
    greedy decoding of a language model writes one molecule N times. Columns: canonical
    ``smiles`` (empty when the sample is not a molecule, with an ``error``), the ``sampled``
    string and its ``log_likelihood`` under the model.
    """
    import pandas as pd
    import torch

    from matfuse.cli.common import check_out, exit_for_rows, write_output
    from matfuse.foundation.clm import load_clm
    from matfuse.foundation.tokenizers import canonical_smiles

    with user_errors():
        check_out(out)
        if input is not None or sample <= 0:
            raise ValueError(f"{model} is a language model without latents: use --sample N")
        if temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {temperature}")
        lm = load_clm(path if path is not None else model)
    generator = torch.Generator().manual_seed(seed)
    sampled: list[str] = []
    loglik: list[float] = []
    with torch.no_grad():
        for start in range(0, sample, 1000):  # bounded memory for large N
            smiles, logp = lm.sample(
                min(1000, sample - start), temperature=temperature or 1.0, generator=generator
            )
            sampled += smiles
            loglik += logp.tolist()
    canonical = [canonical_smiles(s) for s in sampled]
    frame = pd.DataFrame(
        {
            "smiles": pd.Series(canonical, dtype=object),
            "error": [None if c else "sampled string is not a valid molecule" for c in canonical],
            "sampled": sampled,
            "log_likelihood": loglik,
        }
    )
    write_output(frame, out)
    valid = frame["smiles"].notna().mean() if len(frame) else 0.0
    err_console.print(f"{len(frame)} molecules sampled from {model} ({valid:.1%} valid) -> {out}")
    exit_for_rows(int(frame["error"].notna().sum()), allow_invalid)
