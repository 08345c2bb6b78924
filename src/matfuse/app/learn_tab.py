"""The Learn tab: downstream model and hyperparameters, training with progress, results.

Training runs in Gradio's queue (in a worker thread, at most ``COMPUTE_SLOTS`` at once), so
the page stays responsive and shows a progress bar while the model fits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.kinds import DEFAULT_KIND, noun
from matfuse.app.represent_tab import RepresentTab, chosen_encoders
from matfuse.app.state import COMPUTE_SLOTS, SessionState
from matfuse.app.training import (
    default_hyperparameters,
    model_choices,
    parse_hyperparameters,
    train_model,
)
from matfuse.models import UNCERTAINTY_MODES, infer_task_types


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


@dataclass
class LearnTab:
    """The train event (other tabs chain on it), the model dropdown and the download."""

    train_event: Any
    download: gr.DownloadButton
    model: gr.Dropdown
    state: gr.State

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
            seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
        with gr.Row():
            params = gr.Code(
                value="{}",
                language="json",
                label="Key hyperparameters (JSON; defaults from the model registry)",
                lines=5,
                elem_id="hyperparameters",
            )
            with gr.Column():
                compare = gr.Checkbox(
                    value=True,
                    label="Also fit each encoder alone (comparison table)",
                )
                train_btn = gr.Button("Train", variant="primary", elem_id="train-button")
        summary = gr.Markdown(elem_id="train-summary")
        with gr.Row():
            metrics = gr.Dataframe(
                label="Metrics per split", interactive=False, visible=False, elem_id="metrics-table"
            )
            comparison = gr.Dataframe(
                label="Single encoders vs fused (test set)",
                interactive=False,
                visible=False,
                elem_id="comparison-table",
            )
        figures = gr.Gallery(
            label="Plots: parity / ROC, residuals, error vs similarity, comparison",
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

    def refresh(session: SessionState, *groups: list[str]) -> str:
        return ready_text(session, chosen_encoders(*groups))

    def train(
        session: SessionState,
        model_name: str,
        unc: str,
        seed_value: float | None,
        params_text: str,
        compare_singles: bool,
        progress: gr.Progress = gr.Progress(),  # positional: Gradio injects it
        *groups: list[str],
    ) -> tuple[Any, ...]:
        encoders = chosen_encoders(*groups)
        task, n = session_task(session)
        try:
            overrides = parse_hyperparameters(params_text, model_name, task, n)
            result = train_model(
                session,
                encoders,
                model=model_name,
                params=overrides,
                uncertainty=unc,
                compare=compare_singles,
                seed=int(seed_value or 0),
                progress=lambda f, m: progress(float(np.clip(f, 0, 1)), desc=m),
            )
        except ValueError as err:
            raise gr.Error(str(err), title="Training not started") from None
        return (
            result.summary,
            gr.Dataframe(display_frame(result.metrics), visible=True),
            gr.Dataframe(display_frame(result.comparison), visible=True),
            gr.Gallery(result.figures, visible=True),
            gr.DownloadButton(value=str(result.model_zip), visible=True),
        )

    groups = represent.groups
    tab.select(refresh, [state, *groups], ready)
    for group in groups:
        group.change(refresh, [state, *groups], ready)
    model.change(hyperparameter_text, [model, state], params)
    event = train_btn.click(
        train,
        [state, model, uncertainty, seed, params, compare, *groups],
        [summary, metrics, comparison, figures, download],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
    )
    return LearnTab(train_event=event, download=download, model=model, state=state)
