"""The Learn tab: downstream model and hyperparameters, training with progress, results.

Training runs in Gradio's queue (at most ``COMPUTE_SLOTS`` at once) and, inside the event, in
a worker thread (:class:`~matfuse.app.train_progress.BackgroundRun`), so the handler can
stream the stages, elapsed time and ETA into a box right under the *Train* button while the
model fits. Every finished run lands in the session's run history (table below the results),
from which a run's model can be reloaded for Predict and Generate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from matfuse.app.history import reload_run
from matfuse.app.hyper_widgets import N_FIELDS, field_specs, json_with_field
from matfuse.app.kinds import DEFAULT_KIND, noun
from matfuse.app.represent_tab import RepresentTab, chosen_encoders
from matfuse.app.state import COMPUTE_SLOTS, REFRESH_S, SessionState
from matfuse.app.train_progress import BackgroundRun, TrainProgress
from matfuse.app.training import (
    TrainResult,
    default_hyperparameters,
    model_choices,
    parse_hyperparameters,
    train_model,
)
from matfuse.models import UNCERTAINTY_MODES, infer_task_types
from matfuse.pipeline import IMPUTE_MODES


def session_task(session: SessionState) -> tuple[str, int | None]:
    """Task of the first target and the number of fitted rows, for hyperparameter defaults."""
    data = session.split
    if data is None:
        return "regression", None
    try:
        task = infer_task_types(data.Y[:, :1])[0]
    except ValueError:
        task = "regression"
    return task, int(len(data.fit_rows))


def hyperparameter_text(model: str, session: SessionState) -> str:
    """The JSON shown in the hyperparameter box when a model is chosen."""
    task, n = session_task(session)
    return json.dumps(default_hyperparameters(model, task, n), indent=1)


def ready_text(session: SessionState, encoders: list[str]) -> str:
    """What training will use, so nobody trains on the wrong data by accident."""
    data = session.split
    if session.table is None and session.notice:
        return f"**Not ready:** {session.missing_data_message()}."
    if session.table is None or data is None:
        return "**Not ready:** load a dataset and choose its split in the **Data** tab first."
    enc = " + ".join(encoders) if encoders else "none chosen (Represent tab)"
    return (
        f"Data: **{session.source}** ({noun(session.kind)}), target(s) "
        f"**{', '.join(data.target_names)}**, split **{data.split_name}** "
        f"({len(data.fit_rows):,} fit / {len(data.test):,} test). Encoders: **{enc}**."
    )


def display_frame(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Rounded numbers and no all-empty columns (e.g. coverage without intervals)."""
    out = frame.dropna(axis=1, how="all").copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out


def model_update(session: SessionState, current: str | None) -> Any:
    """The model dropdown for the loaded data's kind: models that cannot learn from it
    (``crystal-graph`` for molecules or compositions) are not offered."""
    choices = model_choices(session.kind)
    names = [name for _, name in choices]
    return gr.update(choices=choices, value=current if current in names else "auto")


def field_updates(model: str, session: SessionState) -> list[Any]:
    """The hyperparameter fields for ``model`` (label, default, shown), then their names."""
    task, n = session_task(session)
    specs = field_specs(model, task, n)
    updates = [
        gr.update(visible=False, value="")
        if spec is None
        else gr.update(visible=True, label=spec[0], value=spec[1])
        for spec in specs
    ]
    return [*updates, [spec[0] if spec else None for spec in specs]]


def field_writer(i: int) -> Any:
    """The handler of field ``i``: write its value into the JSON box under its name."""

    def write(current: str | None, names: list[str | None], text: str | None) -> str:
        name = names[i] if i < len(names) else None
        if name is None:
            return current or "{}"
        return json_with_field(current, name, text)

    return write


def history_update(session: SessionState) -> Any:
    """The run history table (hidden until there is a run)."""
    frame = session.history.frame()
    return gr.update(value=frame, visible=not frame.empty)


@dataclass
class LearnTab:
    """The train event (other tabs chain on it), the model dropdown and the download."""

    train_event: Any
    download: gr.DownloadButton
    model: gr.Dropdown
    state: gr.State
    #: reloading a run's model: Predict and Generate refresh after it, as after training
    reload_event: Any = None

    def on_kind(self, session: SessionState, current: str | None) -> Any:
        """After the Data tab loaded (or re-read) a table: the models for its kind."""
        return model_update(session, current)

    @property
    def kind_inputs(self) -> list[Any]:
        return [self.state, self.model]


def build(state: gr.State, represent: RepresentTab) -> LearnTab:
    """Lay out the Learn tab and wire its events."""
    with gr.Tab("3 · Learn", id="learn") as tab:
        ready = gr.Markdown(elem_id="learn-ready")
        with gr.Row():
            model = gr.Dropdown(
                choices=model_choices(DEFAULT_KIND),
                value="auto",
                label="Downstream model",
                scale=2,
                elem_id="model-choice",
            )
            uncertainty = gr.Dropdown(
                choices=list(UNCERTAINTY_MODES),
                value="auto",
                label="Uncertainty",
                info="auto: native spread (rf, gp) or conformal intervals",
            )
            impute = gr.Dropdown(
                choices=list(IMPUTE_MODES),
                value="auto",
                label="Missing modality",
                info="translate: predict a row's missing block (no CIF) from its other "
                "blocks; auto: so for multimodal data unless the model is a learned fusion",
                elem_id="impute-choice",
            )
            seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
        with gr.Row():
            fields = [
                gr.Textbox(visible=False, max_lines=1, min_width=120, elem_id=f"hp-field-{i}")
                for i in range(N_FIELDS)
            ]
        field_names = gr.State([None] * N_FIELDS)
        with gr.Row():
            params = gr.Code(
                value="{}",
                language="json",
                label="Key hyperparameters (JSON, for experts; the fields above write it)",
                lines=5,
                elem_id="hyperparameters",
            )
            with gr.Column():
                compare = gr.Checkbox(
                    value=True,
                    label="Also fit each encoder alone (comparison table)",
                )
                train_btn = gr.Button("Train", variant="primary", elem_id="train-button")
        progress_box = gr.Markdown(elem_id="train-progress")
        summary = gr.Markdown(elem_id="train-summary")
        with gr.Row():
            metrics = gr.Dataframe(
                label="Metrics per split (train/valid rows were fitted: training-set metrics)",
                interactive=False,
                visible=False,
                elem_id="metrics-table",
            )
            comparison = gr.Dataframe(
                label="Single encoders vs fused (test set)",
                interactive=False,
                visible=False,
                elem_id="comparison-table",
            )
        figures = gr.Gallery(
            label="Plots: parity and residuals, or ROC, precision–recall and calibration",
            columns=4,
            height=360,
            interactive=False,
            object_fit="contain",
            visible=False,
            elem_id="learn-plots",
        )
        download = gr.DownloadButton(
            "Download trained model (.zip)", visible=False, elem_id="download-model-learn"
        )
        with gr.Accordion("Runs in this session", open=True):
            history = gr.Dataframe(
                interactive=False, visible=False, max_height=300, elem_id="run-history"
            )
            with gr.Row():
                run_number = gr.Number(
                    value=1, precision=0, minimum=1, label="Run", elem_id="reload-run-number"
                )
                reload_btn = gr.Button("Reload this run's model", elem_id="reload-run")
            reload_status = gr.Markdown(elem_id="reload-status")

    def refresh(session: SessionState, *groups: list[str]) -> str:
        return ready_text(session, chosen_encoders(*groups))

    def train(
        session: SessionState,
        model_name: str,
        unc: str,
        seed_value: float | None,
        params_text: str,
        compare_singles: bool,
        impute_mode: str,
        *groups: list[str],
    ) -> Any:
        encoders = chosen_encoders(*groups)
        task, n = session_task(session)
        try:
            overrides = parse_hyperparameters(params_text, model_name, task, n)
        except ValueError as err:
            raise gr.Error(str(err), title="Training not started") from None
        tracker = TrainProgress()
        run = BackgroundRun.start(
            lambda progress: train_model(
                session,
                encoders,
                model=model_name,
                params=overrides,
                uncertainty=unc,
                compare=compare_singles,
                seed=int(seed_value or 0),
                progress=progress,
                impute=impute_mode or "auto",
            ),
            tracker,
        )
        waiting = (gr.skip(),) * 6
        yield (tracker.markdown(), *waiting)
        while not run.wait(REFRESH_S):
            yield (tracker.markdown(), *waiting)
        if isinstance(run.error, ValueError):
            raise gr.Error(str(run.error), title="Training not started") from None
        if run.error is not None:
            raise gr.Error(f"{type(run.error).__name__}: {run.error}", title="Training failed")
        result = run.result
        assert isinstance(result, TrainResult)
        yield (
            tracker.markdown(),
            result.summary,
            gr.Dataframe(display_frame(result.metrics), visible=True),
            gr.Dataframe(display_frame(result.comparison), visible=True),
            gr.Gallery(result.figures, visible=True),
            gr.DownloadButton(value=str(result.model_zip), visible=True),
            history_update(session),
        )

    def reload(session: SessionState, number: float | None) -> tuple[Any, ...]:
        try:
            record = reload_run(session, number)
        except ValueError as err:
            raise gr.Error(str(err), title="Run not reloaded") from None
        zip_path = session.model_zip
        note = (
            f"Reloaded **run {record.run}** ({' + '.join(record.encoders)} → {record.model} "
            f"on {record.data}, {record.split} split): Predict and Generate now use its "
            "model."
        )
        if session.source != record.data:
            note += f" The data loaded now is **{session.source or 'none'}**."
        return (
            note,
            record.summary,
            gr.Dataframe(display_frame(pd.DataFrame(record.metrics)), visible=True),
            gr.DownloadButton(value=str(zip_path) if zip_path else None, visible=True),
        )

    groups = represent.groups
    tab.select(refresh, [state, *groups], ready)
    for group in groups:
        group.change(refresh, [state, *groups], ready)
    model.change(hyperparameter_text, [model, state], params).then(
        field_updates, [model, state], [*fields, field_names]
    )
    for i, box in enumerate(fields):
        # ``change`` (not ``input``): also a value set by a script or pasted counts; a model
        # change re-fills the fields with the defaults, which leaves the JSON as it was
        box.change(field_writer(i), [params, field_names, box], params, show_progress="hidden")
    event = train_btn.click(
        train,
        [state, model, uncertainty, seed, params, compare, impute, *groups],
        [progress_box, summary, metrics, comparison, figures, download, history],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
        show_progress="hidden",
    )
    reload_event = reload_btn.click(
        reload, [state, run_number], [reload_status, summary, metrics, download]
    )
    return LearnTab(
        train_event=event,
        download=download,
        model=model,
        state=state,
        reload_event=reload_event,
    )
