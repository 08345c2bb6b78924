"""``featurize``, ``train``, ``predict``, ``benchmark``: from a table to a model and back."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from matfuse.cli.common import (
    SPLIT_HELP,
    AllowInvalidOption,
    InputColOption,
    InputTypeOption,
    SplitParamOption,
    app,
    check_options,
    check_out,
    console,
    err_console,
    exit_for_rows,
    fmt,
    frame_table,
    show_progress,
    split_list,
    split_params,
    user_errors,
)
from matfuse.cli.screen import SchedulerOption, WorkersOption
from matfuse.inputs.readers import DEFAULT_CHUNK_ROWS as DEFAULT_BATCH_ROWS

if TYPE_CHECKING:
    from matfuse.pipeline import PropertyModel
    from matfuse.workflow.data import SplitData


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
        bool,
        typer.Option("--fused", help="Write the scaled, fused matrix instead of raw blocks."),
    ] = False,
    allow_invalid: AllowInvalidOption = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Encode inputs; every input row is written, invalid ones with an error and NaNs.

    Exit status 3 when some rows are invalid (unless --allow-invalid); with --workers or
    --scheduler, partitions run on Dask workers (as `matfuse screen`), 4 if some failed.
    """
    from matfuse.fusion import LateFusion, compute_blocks
    from matfuse.inputs import check_encoders, default_encoders, display_keys, load_input_table
    from matfuse.inputs.writers import write_table

    with user_errors():
        check_out(out)
        check_options(input, split_list(encoders), input_type=input_type, input_col=input_col)
    if workers is not None or scheduler is not None:
        from matfuse.cli.screen import distributed_featurize

        distributed_featurize(
            input,
            out,
            split_list(encoders),
            input_type,
            input_col,
            fused,
            workers,
            scheduler,
            allow_invalid,
        )
        return
    with user_errors():
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
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            metavar="COLUMN",
            help="Target column; repeat for multi-task (default: guessed from the column "
            "names, measured values first, predictions and descriptors last).",
        ),
    ] = None,
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
    impute: Annotated[
        str,
        typer.Option(
            help="A row's missing modality (no CIF, a failed encoder): translate = predict "
            "it from the row's other blocks, none = leave it to the model, auto = translate "
            "for multimodal inputs unless the model is a learned fusion."
        ),
    ] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    refit_all: Annotated[
        bool,
        typer.Option("--refit-all", help="After evaluating, refit on every row before saving."),
    ] = False,
) -> None:
    """Train a property model, evaluate it on a held-out split and save it with a report.

    Inputs are molecules (SMILES), compositions (formulas) or crystal structures (CIF,
    POSCAR, extended XYZ). Without --target the likeliest numeric column is chosen and
    named. Example: matfuse train perov_5/val.csv --input-type structure --target heat_ref
    --out model
    """
    from matfuse.inputs import check_encoders, default_encoders
    from matfuse.models import get_spec
    from matfuse.pipeline import IMPUTE_MODES, PropertyModel, check_model
    from matfuse.workflow import fit_and_report

    with user_errors():
        check_options(
            input,
            split_list(encoders),
            model=model,
            split=split,
            split_param=split_param,
            input_type=input_type,
            input_col=input_col,
        )
        if get_spec(model).end_to_end and tune_trials:
            raise ValueError(f"--tune-trials does not apply to the end-to-end model {model!r}")
        if impute not in IMPUTE_MODES:
            raise ValueError(f"--impute must be one of {', '.join(IMPUTE_MODES)}, got {impute!r}")
        data = _load_dataset(
            input, target or [], split, seed, input_type, input_col, split_param, guess=True
        )
        check_model(model, data.input_type)
        names = split_list(encoders) or default_encoders(data.input_type)
        check_encoders(names, data.input_type)
        if get_spec(model).end_to_end:
            names = []  # the model reads the inputs itself
    _print_target_choice(data)
    pm = PropertyModel(
        encoders=names,
        model=model,
        tune_trials=tune_trials,
        random_state=seed,
        input_type=data.input_type,
        impute=impute,
    )
    fit_rows = data.fit_rows
    filling = "; missing modalities translated from the others" if pm.imputes else ""
    err_console.print(
        f"{data.description}; inputs: {data.input_type}; encoders: {', '.join(names)}; "
        f"model: {model}{filling}"
    )
    with _stage_progress(len(names) + len(data.target_names) + 1, data.target_names):
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
    guess: bool = False,
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
        guess_target=guess,
        **split_params(split_param),
    )


def _print_target_choice(data: SplitData) -> None:
    """Say which target was guessed (and what else could have been), and warn of leaks."""
    info = data.target_info
    if info.get("guessed"):
        others = list(info.get("others") or [])
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        more = f"; others: {listed}" if others else ""
        err_console.print(
            f"target: {escape(data.target_names[0])} (guessed, {info.get('reason', '')}"
            f"{escape(more)}; choose with --target)"
        )
    for target, found in (info.get("collinear") or {}).items():
        cols = ", ".join(f"{c['column']} (r = {c['r']:+.3f})" for c in found)
        err_console.print(
            f"[yellow]warning:[/yellow] {escape(cols)} almost repeat(s) the target "
            f"{escape(target)}: a possible label leak; drop it or check the file"
        )


@contextmanager
def _stage_progress(total: int, target_names: list[str]) -> Iterator[None]:
    """A bar on stderr through the stages of a fit (encode each block, fit each target).

    Shown when stderr is a terminal and not --quiet (as for predict); otherwise each
    stage is an info line (``matfuse -v``).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from matfuse.progress import Stage, listen_stages

    logger = logging.getLogger("matfuse.cli")
    shown = show_progress()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not shown,
    ) as progress:
        task = progress.add_task("starting", total=total)
        seen = 0

        def on_stage(s: Stage) -> None:
            nonlocal seen
            if s.phase == "fit" and s.total == len(target_names):
                text = f"fitting {target_names[s.step]} with {s.label} ({s.step + 1}/{s.total})"
            elif s.phase == "encode":
                text = f"encoding {s.label} ({s.step + 1}/{s.total})"
            elif s.phase == "report":
                text = "predicting the test rows and writing the report"
            else:
                text = s.text
            progress.update(task, description=text, completed=min(seen, total), refresh=True)
            seen += 1
            if not shown:
                logger.info("%s", text)

        with listen_stages(on_stage):
            yield
        progress.update(task, completed=total)


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
    # a model that does not beat the trivial baseline is already a library warning


def _baseline_kind(metrics: dict) -> str:
    return "prior rate" if metrics.get("task_type") == "classification" else "median/mean"


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Directory written by `matfuse train`.")],
    input: Annotated[Path, typer.Argument(help="Table of molecules or materials to predict.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output table (.csv, .tsv, .csv.gz, .parquet).")
    ],
    input_col: InputColOption = None,
    allow_invalid: AllowInvalidOption = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            metavar="ROWS",
            help="Rows read, encoded and predicted at a time (memory follows it, not the file).",
        ),
    ] = DEFAULT_BATCH_ROWS,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Predict every row; invalid inputs get an `error` and empty predictions.

    The input kind (molecule, composition, structure) is the one the model was trained on.
    Every input row appears in the output, in order. The table is read, predicted and
    written --batch-size rows at a time (SDF files are read whole). Exit status 3 when some
    rows could not be predicted (0 with --allow-invalid), 2 for a user error such as a
    missing column. With --workers or --scheduler, --batch-size partitions run on Dask
    workers (as `matfuse screen`); exit 4 if some failed (a rerun resumes).
    """
    from matfuse.workflow.stream import InputTableError, predict_stream

    with user_errors():
        check_out(out)
    if workers is not None or scheduler is not None:  # partitions on Dask workers
        from matfuse.cli.screen import distributed_predict

        distributed_predict(
            model_dir, input, out, batch_size, input_col, workers, scheduler, allow_invalid
        )
        return
    pm = _load_property_model(model_dir)
    with _row_progress() as advance:
        try:
            counts = predict_stream(
                pm,
                input,
                out,
                batch_size=batch_size,
                input_col=input_col or None,
                on_progress=advance,
            )
        except InputTableError as err:
            with user_errors():
                raise err from None
    err_console.print(f"{counts.rows} rows predicted, {counts.invalid} invalid -> {out}")
    exit_for_rows(counts.invalid, allow_invalid)


@contextmanager
def _row_progress() -> Iterator[Callable[[int], None]]:
    """A rows and rows/s counter on stderr when it is a terminal (and not --quiet)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not show_progress(),
    ) as progress:
        task = progress.add_task("predict", total=None, rate="")
        started = time.perf_counter()

        def advance(rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=rows, rate=f"{rate:,.0f} rows/s")

        yield advance


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
        check_options(
            dataset,
            split_list(encoders),
            model=model,
            split=split,
            split_param=split_param,
            input_type=input_type,
            input_col=input_col,
        )
        data = _load_dataset(dataset, target, split, seed, input_type, input_col, split_param)
        names = split_list(encoders) or default_encoders(data.input_type)
        check_encoders(names, data.input_type)
        if get_spec(model).end_to_end:
            raise ValueError(
                f"benchmark compares encoders; {model!r} reads the inputs itself: "
                "train it with `matfuse train --model " + model + "`"
            )
    err_console.print(data.description)
    result = compare_representations(
        data, names, model=model, random_state=seed, progress=show_progress()
    )
    payload = {**result.to_dict(), "command": " ".join(["matfuse", *sys.argv[1:]])}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))
    console.print(frame_table(comparison_frame(result), title=data.description))
