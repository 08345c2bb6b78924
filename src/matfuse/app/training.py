"""What the Learn tab does, without any Gradio: train, evaluate per split, compare, save.

Kept free of UI code so that it can be unit-tested and so that the browser path runs the very
same library functions as ``matfuse train`` and ``matfuse benchmark``:
:func:`~matfuse.workflow.compare_representations` for the single-encoder rows of the
comparison and :func:`~matfuse.workflow.fit_and_report` for the saved fused model. The
input kind (molecules, compositions, structures) comes from the session's split, so the
saved model reads the same kind of input in the Predict tab and in ``matfuse predict``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matfuse.app.curves import classification_plots, target_units
from matfuse.app.history import RunRecord, now_text
from matfuse.app.kinds import noun
from matfuse.app.plots import residual_plot
from matfuse.app.state import SessionState
from matfuse.evaluate import comparison_bar_plot, evaluate_targets, primary_metric
from matfuse.evaluate.baseline import baseline_source, evaluate_baseline
from matfuse.models import get_spec, list_models, make_estimator
from matfuse.pipeline import PropertyModel
from matfuse.workflow import (
    Comparison,
    RepresentationResult,
    SplitData,
    compare_representations,
    comparison_frame,
    fit_and_report,
)

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

#: Hyperparameters worth showing per model; their default *values* are read from the model
#: registry so that the UI can never disagree with what ``matfuse train`` would use.
KEY_PARAMS: dict[str, tuple[str, ...]] = {
    "xgboost": ("n_estimators", "learning_rate", "max_depth", "subsample", "colsample_bytree"),
    "lightgbm": ("n_estimators", "learning_rate", "num_leaves", "min_child_samples"),
    "rf": ("n_estimators", "max_features", "min_samples_leaf", "max_depth"),
    "svr": ("C", "epsilon", "gamma"),
    "krr": ("alpha", "gamma"),
    "gp": (),
    "linear": (),
    "auto": (),
    "crystal-graph": ("epochs", "hidden", "n_conv", "lr", "cutoff"),
    "fusion-moe": ("n_members", "max_epochs", "patience", "hidden", "modality_dropout"),
    "fusion-attention": ("n_members", "max_epochs", "patience", "hidden", "modality_dropout"),
    "transfer-mlp": ("source", "max_epochs", "patience", "head_lr", "body_lr"),
    **{
        f"finetune-{encoder}": ("max_epochs", "patience", "encoder_lr", "head_lr", "freeze_layers")
        for encoder in ("selfies-ted", "smi-ted", "smi-ssed", "graph-ged")
    },
}
FUSED_LABEL = "fused (saved model)"
#: Rows the model was fitted on score better than new data would: their metrics say so.
TRAIN_LABEL = "train (fitted): training-set metrics, optimistic"
VALID_LABEL = "valid (fitted): training-set metrics, optimistic"
TEST_LABEL = "test (held out)"
_SHOWN_METRICS = {
    "regression": ("rmse", "mae", "r2", "spearman", "coverage", "mean_width"),
    "classification": ("roc_auc", "pr_auc", "accuracy"),
}


def model_choices(kind: str | None = None) -> list[tuple[str, str]]:
    """(label, name) pairs for the model dropdown, straight from the registry: with
    ``kind``, only the models that learn from that input kind (an end-to-end model such
    as ``crystal-graph`` reads structures only)."""
    return [(f"{s.name} — {s.description}", s.name) for s in list_models(kind=kind)]


def check_model_kind(model: str, kind: str) -> None:
    """A user error if ``model`` cannot learn from inputs of ``kind``."""
    spec = get_spec(model)
    if not spec.applies_to(kind):
        readable = " or ".join(noun(k) for k in spec.input_kinds)
        raise ValueError(
            f"{spec.name} learns from {readable} only; the data holds {noun(kind)}. "
            "Choose another model."
        )


def default_hyperparameters(
    model: str, task: str = "regression", n_samples: int | None = None
) -> dict[str, Any]:
    """The registry's defaults of the key hyperparameters of ``model`` for ``task``."""
    names = KEY_PARAMS.get(model, ())
    if not names:
        return {}
    spec = get_spec(model)
    if not spec.supports(task):
        task = "classification" if task == "regression" else "regression"
    params = make_estimator(model, task, n_samples=n_samples).get_params(deep=True)
    out: dict[str, Any] = {}
    for name in names:
        keys = [k for k in params if k == name or k.endswith(f"model__{name}")]
        if keys:
            value = params[min(keys, key=len)]
            if isinstance(value, np.generic):
                value = value.item()
            if value is None or isinstance(value, bool | int | float | str):
                out[name] = value
    return out


def parse_hyperparameters(
    text: str | None, model: str, task: str = "regression", n_samples: int | None = None
) -> dict[str, Any]:
    """Parse the JSON hyperparameter box; only values that differ from the defaults are kept.

    JSON (not Python literals) so that nothing a user types is evaluated.
    """
    text = (text or "").strip()
    if not text:
        return {}
    try:
        given = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f'hyperparameters must be JSON, e.g. {{"n_estimators": 300}}: {err.msg} '
            f"at line {err.lineno} column {err.colno}"
        ) from None
    if not isinstance(given, dict):
        raise ValueError('hyperparameters must be a JSON object, e.g. {"n_estimators": 300}')
    scalar = (bool, int, float, str)
    bad = [k for k, v in given.items() if not (v is None or isinstance(v, scalar))]
    if bad:
        raise ValueError(f"hyperparameter(s) {bad} must be numbers, strings, true/false or null")
    defaults = default_hyperparameters(model, task, n_samples)
    if model == "auto" and given:
        raise ValueError("'auto' chooses its own hyperparameters; pick a model to set them")
    unknown = sorted(set(given) - set(defaults)) if defaults else []
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for {model}; known: {sorted(defaults)}"
        )
    return {k: v for k, v in given.items() if defaults.get(k, object()) != v}


@dataclass
class TrainResult:
    """Everything the Learn tab shows after training."""

    summary: str
    metrics: pd.DataFrame
    comparison: pd.DataFrame
    figures: list[tuple[str, str]]
    model_dir: Path
    model_zip: Path
    seconds: float
    #: number of this run in the session's history
    run: int = 0


def _metric_rows(
    split_name: str, Y: np.ndarray, res: dict[str, np.ndarray], rows: np.ndarray, model: Any
) -> list[dict[str, Any]]:
    if rows.size == 0:
        return []
    m = evaluate_targets(
        Y[rows],
        res["pred"][rows],
        model.task_types_,
        model.target_names_,
        intervals=res["interval"][rows] if "regression" in model.task_types_ else None,
    )
    out = []
    for name, values in m["targets"].items():
        row: dict[str, Any] = {"split": split_name, "target": name, "n": values.get("n")}
        if values["task_type"] == "regression":
            row["units"] = target_units(name)
        for key in _SHOWN_METRICS[values["task_type"]]:
            if key in values:
                row[key] = values[key]
        out.append(row)
    return out


def baseline_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The trivial baseline's test metrics, one row per target, as the CLI's table shows
    them: MAE against the training median, RMSE/R² against the training mean, the prior
    rate for classification (:func:`~matfuse.evaluate.baseline.baseline_source`)."""
    baseline = report.get("baseline") or {}
    rows: list[dict[str, Any]] = []
    if not baseline:
        return rows
    for name, task in zip(report["target_names"], report["task_types"], strict=True):
        what = "prior rate" if task == "classification" else "median/mean"
        n = ((report.get("counts") or {}).get("labelled") or {}).get(name)
        row: dict[str, Any] = {"split": f"test: trivial baseline ({what})", "target": name, "n": n}
        for key in _SHOWN_METRICS[task]:
            section = baseline.get(baseline_source(task, key)) or {}
            value = (section.get("targets") or {}).get(name, {}).get(key)
            if value is not None:
                row[key] = value
        rows.append(row)
    return rows


def target_transforms(report: dict[str, Any]) -> dict[str, str]:
    """Per target, the transform the model was fitted on (only those that are not identity)."""
    found = (report.get("extra") or {}).get("target_transforms") or {}
    out: dict[str, str] = {}
    for name, t in found.items():
        label = t.get("name") if isinstance(t, dict) else getattr(t, "name", None)
        if label not in (None, "identity"):
            out[str(name)] = str(label)
    return out


def _report_notes(report: dict[str, Any]) -> str:
    """The transform each target was fitted on and why, and a warning for every target
    whose model does not beat the trivial baseline (what ``matfuse train`` prints)."""
    notes: list[str] = []
    found = (report.get("extra") or {}).get("target_transforms") or {}
    for name, label in target_transforms(report).items():
        t = found.get(name)
        reason = t.get("reason", "") if isinstance(t, dict) else getattr(t, "reason", "")
        notes.append(f"**{name}** fitted on a **{label}** transform of the labels ({reason}).")
    comparison = (report.get("baseline") or {}).get("comparison") or {}
    for name, c in comparison.items():
        if c.get("beats_baseline") is False:
            notes.append(
                f"**Warning:** {name}: the model does not beat the trivial baseline on "
                f"{c['metric']} ({c['model']:.4g} vs {c['baseline']:.4g})."
            )
    return "".join(f"\n\n{n}" for n in notes)


def _single_comparison(
    data: SplitData,
    encoders: Sequence[str],
    blocks: dict[str, np.ndarray],
    model: str,
    params: dict[str, Any],
    seed: int,
    progress: Progress,
    span: tuple[float, float],
) -> Comparison | None:
    """One :func:`compare_representations` call per encoder, so progress can move between."""
    merged: Comparison | None = None
    lo, hi = span
    for i, name in enumerate(encoders):
        progress(lo + (hi - lo) * i / len(encoders), f"fitting {model} on {name} alone")
        result = compare_representations(
            data,
            [name],
            model=model,
            fused_sets={},
            blocks={name: blocks[name]},
            model_params=params or None,
            random_state=seed,
            progress=False,
        )
        if merged is None:
            merged = result
        else:
            merged.representations.update(result.representations)
    return merged


def train_model(
    session: SessionState,
    encoders: Sequence[str],
    model: str = "auto",
    params: dict[str, Any] | None = None,
    uncertainty: str = "auto",
    compare: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
    impute: str = "auto",
) -> TrainResult:
    """Fit the fused model on the session's split, evaluate it and compare single encoders."""
    progress = progress or (lambda fraction, message: None)
    data = session.split
    if session.table is None:
        raise ValueError(session.missing_data_message())
    if data is None:
        raise ValueError("load a dataset and choose its split first (Data tab)")
    encoders = list(dict.fromkeys(encoders))
    if not encoders:
        raise ValueError("choose at least one encoder (Represent tab)")
    check_model_kind(model, data.input_type)
    params = dict(params or {})
    start = time.perf_counter()

    progress(0.0, f"computing features ({' + '.join(encoders)})")
    blocks = session.get_blocks(encoders)

    comparison: Comparison | None = None
    if compare and len(encoders) > 1:
        comparison = _single_comparison(
            data, encoders, blocks, model, params, seed, progress, (0.35, 0.65)
        )

    progress(0.65, f"fitting the fused model ({' + '.join(encoders)} → {model})")
    fit_start = time.perf_counter()
    workdir = session.workdir
    report_dir = workdir / "report"
    shutil.rmtree(report_dir, ignore_errors=True)
    pm = PropertyModel(
        encoders=encoders,
        model=model,
        model_params=params or None,
        uncertainty=uncertainty,
        random_state=seed,
        input_type=data.input_type,
        impute=impute,
    )
    report = fit_and_report(pm, data, report_dir, extra={"source": session.source}, blocks=blocks)
    fit_seconds = round(time.perf_counter() - fit_start, 2)

    progress(0.92, "evaluating every split and drawing plots")
    res = pm.predict_with_uncertainty(blocks)
    rows: list[dict[str, Any]] = []
    for split_name, idx in (
        (TRAIN_LABEL, data.train),
        (VALID_LABEL, data.valid),
        (TEST_LABEL, data.test),
    ):
        rows += _metric_rows(split_name, data.Y, res, np.asarray(idx, dtype=int), pm)
    transforms = target_transforms(report)
    for row in rows:
        row["target transform"] = transforms.get(row["target"])
    rows += baseline_rows(report)
    metrics = pd.DataFrame(rows)

    test_metrics = evaluate_targets(
        data.Y[data.test], res["pred"][data.test], pm.task_types_, pm.target_names_
    )
    fused_entry = RepresentationResult(
        encoders=encoders,
        metrics=test_metrics,
        fit_seconds=fit_seconds,
        task_types=list(pm.task_types_),
    )
    if comparison is None:  # the same fields compare_representations reports
        fit = data.fit_rows
        comparison = Comparison(
            split=data.split_name,
            n_train=int(len(data.train)),
            n_valid=int(len(data.valid)),
            n_test=int(len(data.test)),
            targets=list(data.target_names),
            model=model,
            notes=dict(data.notes),
            representations={},
            baseline=evaluate_baseline(
                data.Y[fit], data.Y[data.test], list(pm.task_types_), list(data.target_names)
            ),
            description=data.description,
        )
    comparison.representations[FUSED_LABEL if len(encoders) > 1 else encoders[0]] = fused_entry
    comp = comparison_frame(comparison)

    figures: list[tuple[str, str]] = []
    for j, (name, kind) in enumerate(zip(pm.target_names_, pm.task_types_, strict=True)):
        files = [str(report_dir / rel) for rel in report["files"].get(name, [])]
        main = [f for f in files if f.endswith(("parity.png", "roc.png"))]
        rest = [f for f in files if f not in main]
        if kind == "regression":
            figures += [(f, f"{name}: parity (test)") for f in main]
            path = residual_plot(
                data.Y[data.test, j],
                res["pred"][data.test, j],
                f"{name} — test residuals",
                report_dir / f"residuals_{j}.png",
                units=target_units(name),
            )
            figures.append((str(path), f"{name}: residuals (test)"))
        else:  # ROC, precision-recall and calibration instead of one ROC preview
            figures += classification_plots(
                data.Y[data.test, j], res["pred"][data.test, j], name, report_dir, str(j)
            ) or [(f, f"{name}: ROC (test)") for f in main]
        figures += [(f, f"{name}: |error| vs similarity to training set") for f in rest]
    if len(comp) > 1:
        key = comp.columns[2]
        bar = comparison_bar_plot(
            dict(zip(comp["representation"], comp[key], strict=True)),
            f"test {key}",
            report_dir / "encoder_comparison.png",
        )
        figures.append((str(bar), f"single encoders vs fused: test {key}"))

    model_dir = workdir / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    pm.save(model_dir)
    archive = shutil.make_archive(str(workdir / "matfuse-model"), "zip", root_dir=model_dir)
    seconds = round(time.perf_counter() - start, 1)

    session.model = pm
    session.model_dir = model_dir
    session.model_zip = Path(archive)
    session.results = {"metrics": metrics, "comparison": comp, "seconds": seconds}
    session.fit_in_memory("the trained model", keep=encoders, refuse=False)
    logger.info(
        "trained %s on %d %s in %.1f s",
        "+".join(encoders),
        len(data.fit_rows),
        noun(data.input_type),
        seconds,
    )
    summary = _summary(pm, data, test_metrics, encoders, model, seconds) + _report_notes(report)
    record = record_run(session, pm, data, test_metrics, metrics, encoders, model, params)
    record.seconds, record.summary = seconds, summary
    session.history.add(record, model_dir, workdir / "runs")
    progress(1.0, "done")
    return TrainResult(
        summary=summary,
        metrics=metrics,
        comparison=comp,
        figures=figures,
        model_dir=model_dir,
        model_zip=Path(archive),
        seconds=seconds,
        run=record.run,
    )


def record_run(
    session: SessionState,
    pm: PropertyModel,
    data: SplitData,
    test_metrics: dict[str, Any],
    metrics: pd.DataFrame,
    encoders: Sequence[str],
    model: str,
    params: dict[str, Any],
) -> RunRecord:
    """The history entry of a finished run: settings, headline test metric and baseline."""
    kind = pm.task_types_[0]
    key, _ = primary_metric(kind)
    value = test_metrics["mean"][kind].get(key)
    baseline = None
    first = pm.target_names_[0]
    rows = metrics[(metrics["target"] == first) & metrics["split"].str.contains("baseline")]
    if key in rows.columns and len(rows) and pd.notna(rows[key].iloc[0]):
        baseline = float(rows[key].iloc[0])
    return RunRecord(
        run=session.history.next_number(),
        time=now_text(),
        data=session.source,
        kind=data.input_type,
        targets=list(pm.target_names_),
        encoders=list(encoders),
        model=model,
        params=dict(params),
        split=data.split_name,
        n_fit=int(len(data.fit_rows)),
        n_test=int(len(data.test)),
        metric=key,
        value=None if value is None else float(value),
        baseline=baseline,
        seconds=0.0,
        summary="",
        metrics=metrics.to_dict("records"),
    )


def _summary(
    pm: PropertyModel,
    data: SplitData,
    test_metrics: dict[str, Any],
    encoders: Sequence[str],
    model: str,
    seconds: float,
) -> str:
    kind = pm.task_types_[0]
    key, _ = primary_metric(kind)
    value = test_metrics["mean"][kind][key]
    label = {"rmse": "RMSE", "roc_auc": "ROC-AUC", "mae": "MAE"}.get(key, key)
    extra = ""
    if kind == "regression":
        units = target_units(pm.target_names_[0]) if len(pm.target_names_) == 1 else None
        extra = f" {units}" if units else ""
        extra += f", R² {test_metrics['mean'][kind].get('r2', float('nan')):.3f}"
    targets = ", ".join(pm.target_names_)
    return (
        f"### Test {label}: {value:.3f}{extra}\n"
        f"Target(s) **{targets}** · encoders **{' + '.join(encoders)}** → model **{model}** · "
        f"{len(data.fit_rows):,} {noun(data.input_type)} fitted, {len(data.test):,} tested "
        f"({data.split_name} split) · trained in **{seconds:.1f} s**."
    )
