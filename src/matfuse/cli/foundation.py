"""``pretrain``, ``encode``, ``decode``: our pretrained encoder-decoder models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from matfuse.cli.common import (
    AllowInvalidOption,
    app,
    check_out,
    err_console,
    exit_for_rows,
    user_errors,
    write_output,
)


@app.command()
def pretrain(
    model: Annotated[str, typer.Argument(help="smi-ted | selfies-ted | smi-ssed | graph-ged")],
    corpus: Annotated[Path, typer.Option(help="SMILES corpus (.smi/.txt/.csv, may be .gz).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumes if present).")],
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 20_000,
    batch_size: Annotated[int, typer.Option(help="Molecules per step.")] = 128,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    d_model: Annotated[int, typer.Option(help="Width of encoder and decoder.")] = 128,
    layers: Annotated[int, typer.Option(help="Encoder and decoder layers (each).")] = 3,
    latent_dim: Annotated[int, typer.Option(help="Size of the latent vector.")] = 128,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (and export) after this much training.")
    ] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 500,
    eval_every: Annotated[int, typer.Option(help="Steps between held-out evaluations.")] = 1000,
    heldout: Annotated[
        int, typer.Option(help="Corpus rows held out (never trained on) for evaluation.")
    ] = 1000,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (data order, init, masking).")] = 0,
    resume_lr: Annotated[
        float | None,
        typer.Option(help="When resuming: new peak learning rate for the extended schedule."),
    ] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from a model directory or shipped model name (e.g. selfies-ted) "
            "instead of random weights; its architecture and vocabulary are kept."
        ),
    ] = None,
) -> None:
    """Pretrain a foundation model on a SMILES corpus; rerun the same command to resume."""
    from matfuse.foundation.autoencoder import ModelConfig
    from matfuse.pretrain import MODEL_PRESETS, TrainConfig
    from matfuse.pretrain import pretrain as run_pretraining

    if model not in MODEL_PRESETS:
        raise typer.BadParameter(f"unknown model {model!r}; choose from {', '.join(MODEL_PRESETS)}")
    model_cfg = ModelConfig(
        **MODEL_PRESETS[model],
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        latent_dim=latent_dim,
    )
    train_cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        max_minutes=max_minutes,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        n_heldout=heldout,
        threads=threads,
        device=device,
        seed=seed,
    )
    command = " ".join(["matfuse", *sys.argv[1:]])
    exported = run_pretraining(
        model,
        corpus,
        out,
        model_cfg,
        train_cfg,
        command=command,
        resume_lr=resume_lr,
        init_from=_model_dir(init_from) if init_from else None,
    )
    err_console.print(f"model written to {exported}")


def _model_dir(name_or_path: str) -> Path:
    """A shipped model's name (``selfies-ted``) or a model directory, as a directory."""
    from matfuse.foundation.weights import shipped_models, weights_dir

    if not Path(name_or_path).exists() and name_or_path in shipped_models():
        return weights_dir(name_or_path)
    return Path(name_or_path)


def _foundation_encoder(model: str, path: Path | None):
    from matfuse.encoders import get_encoder
    from matfuse.encoders.registry import ENCODERS, parse_encoder_spec
    from matfuse.foundation.encoders import FoundationEncoder

    with user_errors():
        ENCODERS.get(parse_encoder_spec(model)[0])  # an unknown name is one line, exit 2
    enc = get_encoder(model, **({"path": str(path)} if path else {}))
    if not isinstance(enc, FoundationEncoder):
        raise typer.BadParameter(f"{model!r} is not an encoder-decoder model")
    return enc


@app.command()
def encode(
    input: Annotated[Path, typer.Argument(help="Table of molecules (CSV/SDF/SMI/parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output parquet (or .csv).")],
    model: Annotated[str, typer.Option(help="Foundation model name.")] = "selfies-ted",
    path: Annotated[Path | None, typer.Option(help="Model directory (default: shipped).")] = None,
    smiles_col: Annotated[str | None, typer.Option(help="SMILES column (auto-detected).")] = None,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Latent vectors of molecules (columns z_0..z_{d-1}); invalid rows kept with an error.

    Exit status 3 when some rows are invalid (unless --allow-invalid).
    """
    from matfuse.inputs import load_input_table

    with user_errors():
        check_out(out)
        table = load_input_table(input, input_type="molecule", input_col=smiles_col)
        if len(table) == 0:
            raise ValueError(f"{input} holds no rows")
    enc = _foundation_encoder(model, path)
    block = enc.encode_block(table.parsed)
    frame = pd.DataFrame({"smiles": table.inputs, "error": block.errors})
    latents = pd.DataFrame(block.values, columns=[f"z_{i}" for i in range(block.values.shape[1])])
    result = pd.concat([frame, latents], axis=1)
    write_output(result, out)
    n_bad = int(result["error"].notna().sum())
    err_console.print(f"{len(result)} rows encoded with {model}, {n_bad} invalid -> {out}")
    exit_for_rows(n_bad, allow_invalid)


@app.command()
def decode(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV of SMILES.")],
    input: Annotated[
        Path | None, typer.Argument(help="Latents (parquet/CSV with z_* columns).")
    ] = None,
    model: Annotated[str, typer.Option(help="Foundation model name.")] = "selfies-ted",
    path: Annotated[Path | None, typer.Option(help="Model directory (default: shipped).")] = None,
    sample: Annotated[
        int, typer.Option(help="Instead of an input, decode N draws from the latent prior.")
    ] = 0,
    temperature: Annotated[float, typer.Option(help="0 = greedy; >0 samples tokens.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed for sampling.")] = 0,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Decode latent vectors (or samples from the prior) to SMILES, one row per latent.

    Rows whose latent has missing values, or whose decoded string is not a molecule, keep their
    place with an ``error``; the exit code is then 3 unless ``--allow-invalid``.
    """
    from matfuse.foundation.clm import CONFIG_FILE as CLM_CONFIG

    lm_dir = Path(model) / CLM_CONFIG
    if model == "clm" or model.startswith("clm-") or lm_dir.exists():
        from matfuse.cli.clm import decode_clm  # the language model only samples

        decode_clm(out, input, model, path, sample, temperature, seed, allow_invalid)
        return
    # everything a user can get wrong is checked before the model loads
    with user_errors():
        check_out(out)
        if sample <= 0 and input is None:
            raise ValueError("give a latents file or --sample N")
        if sample <= 0 and input is not None:
            table = _read_latents(input)
            cols = [c for c in table.columns if str(c).startswith("z_")]
            if not cols:
                raise ValueError(f"{input} has no z_* latent columns")
    enc = _foundation_encoder(model, path)
    with user_errors():
        if sample <= 0 and len(cols) != enc.dim:
            raise ValueError(
                f"{input} has {len(cols)} z_* columns; {model} decodes "
                f"{enc.dim}-dimensional latents"
            )
    if sample > 0:
        smiles = enc.sample(sample, seed=seed, temperature=temperature)
        frame = pd.DataFrame({"smiles": smiles, "error": None})
    else:
        Z = table[cols].to_numpy(dtype=np.float32)
        ok = ~np.isnan(Z).any(axis=1)
        smiles = [None] * len(Z)
        if ok.any():
            decoded = enc.decode(Z[ok], temperature, seed)
            for i, smi in zip(np.flatnonzero(ok), decoded, strict=True):
                smiles[i] = smi
        frame = pd.DataFrame({"smiles": smiles}, dtype=object)
        frame["error"] = [None if ok[i] else "latent has missing values" for i in range(len(Z))]
    undecodable = frame["smiles"].isna() & frame["error"].isna()
    frame.loc[undecodable, "error"] = "decoded string is not a valid molecule"
    write_output(frame, out)
    valid = frame["smiles"].notna().mean() if len(frame) else 0.0
    err_console.print(f"{len(frame)} molecules decoded with {model} ({valid:.1%} valid) -> {out}")
    exit_for_rows(int(frame["error"].notna().sum()), allow_invalid)


def _read_latents(path: Path) -> pd.DataFrame:
    """The latents table; an empty or unreadable file is a user error (ValueError)."""
    import pandas.errors

    from matfuse.inputs.readers import read_table

    try:
        return read_table(path)
    except pandas.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: expected a table with z_* latent columns") from None
