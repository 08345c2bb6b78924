"""``featurize``, ``train``, ``predict``, ``benchmark``: from a table to a model and back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.table import Table

from matfuse.cli.common import (
    SPLIT_HELP,
    AllowInvalidOption,
    InputColOption,
    InputTypeOption,
    SplitParamOption,
    app,
    check_out,
    console,
    err_console,
    exit_for_rows,
    fmt,
    split_list,
    split_params,
    user_errors,
)

if TYPE_CHECKING:
    from matfuse.pipeline import PropertyModel


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
        check_out(out)
        table = load_input_table(input, input_type=input_type, input_col=input_col or None)
        if len(table) == 0:
            raise ValueError(f"{input} holds no rows")
        names = split_list(encoders) or default_encoders(table.input_type)
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
    exit_for_rows(n_bad, allow_invalid)


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
    from matfuse.models import get_spec
    from matfuse.pipeline import PropertyModel, check_model
    from matfuse.workflow import fit_and_report

    with user_errors():
        data = _load_dataset(input, target, split, seed, input_type, input_col, split_param)
        check_model(model, data.input_type)
        names = split_list(encoders) or default_encoders(data.input_type)
        check_encoders(names, data.input_type)
        if get_spec(model).end_to_end:
            names = []  # the model reads the inputs itself
            if tune_trials:
                raise ValueError(f"--tune-trials does not apply to the end-to-end model {model!r}")
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
        **split_params(split_param),
    )


def _print_metrics(report: dict) -> None:
    from matfuse.evaluate.baseline import baseline_source

    table = Table(title="test metrics")
    table.add_column("target")
    keys = ["rmse", "mae", "r2", "spearman", "roc_auc", "pr_auc", "coverage"]
    shown = [k for k in keys if any(k in m for m in report["metrics"]["targets"].values())]
    for k in shown:
        table.add_column(k)
    baseline = report.get("baseline") or {}
    for name, m in report["metrics"]["targets"].items():
        table.add_row(name, *[fmt(m.get(k)) for k in shown])
        if baseline:
            task = m.get("task_type", "regression")
            cells = [
                fmt(baseline[baseline_source(task, k)]["targets"].get(name, {}).get(k))
                for k in shown
            ]
            table.add_row(f"  baseline ({_baseline_kind(m)})", *cells, style="dim")
    console.print(table)
    for name, t in (report.get("extra", {}).get("target_transforms") or {}).items():
        if t and t.get("name") not in (None, "identity"):
            err_console.print(f"{name}: fitted on a {t['name']} transform ({t.get('reason', '')})")
    for name, c in (baseline.get("comparison") or {}).items():
        if c.get("beats_baseline") is False:
            err_console.print(
                f"[yellow]warning:[/yellow] {name}: the model does not beat the trivial "
                f"baseline on {c['metric']} ({c['model']:.4g} vs {c['baseline']:.4g})"
            )


def _baseline_kind(metrics: dict) -> str:
    return "prior rate" if metrics.get("task_type") == "classification" else "median/mean"


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
        check_out(out)
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
    exit_for_rows(n_bad, allow_invalid)


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
    """Compare each encoder alone and the fused set on one split, beside the trivial baseline.

    The table's last row is the baseline (training median / mean, or prior rate).
    """
    from matfuse.evaluate import json_safe
    from matfuse.inputs import check_encoders, default_encoders
    from matfuse.inputs.writers import atomic_path
    from matfuse.models import get_spec
    from matfuse.workflow import compare_representations, comparison_frame

    with user_errors():
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file name")
        data = _load_dataset(dataset, target, split, seed, input_type, input_col, split_param)
        names = split_list(encoders) or default_encoders(data.input_type)
        check_encoders(names, data.input_type)
        if get_spec(model).end_to_end:
            raise ValueError(
                f"benchmark compares encoders; {model!r} reads the inputs itself: "
                "train it with `matfuse train --model " + model + "`"
            )
    err_console.print(data.description)
    result = compare_representations(data, names, model=model, random_state=seed)
    payload = {**result.to_dict(), "command": " ".join(["matfuse", *sys.argv[1:]])}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))
    console.print(comparison_frame(result).to_string(index=False))
