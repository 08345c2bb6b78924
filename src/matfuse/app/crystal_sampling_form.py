"""The Generate tab's crystal mode, third task: the form and results of sampling a learned
generator (``matfuse crystal-generate``); the logic is in :mod:`matfuse.app.crystal_sampling`.

Kept apart from :mod:`matfuse.app.crystal_mode` because it shares nothing with the
relaxation searches' form but the task switch: it relaxes nothing unless asked and shows
its own results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from matfuse.app.generate_results import relay, run_in_thread
from matfuse.app.state import COMPUTE_SLOTS, REFRESH_S, SessionState
from matfuse.app.widgets import hidden_table

__all__ = ["sampling_section"]


def sampling_section(state: gr.State) -> gr.Column:
    """The form and results of sampling a learned generator (``matfuse crystal-generate``)."""
    from matfuse.app import crystal_sampling as cs

    models = cs.model_choices()
    modes = list(cs.MODES)
    with gr.Column(visible=False) as box:
        gr.Markdown(
            "Sample a flow-matching crystal generator: de novo (atom count, elements, lattice "
            "and positions all generated) or the structures of one formula. Each structure "
            "takes milliseconds; every one is kept, the invalid ones flagged. Property "
            "targets steer the sample by classifier-free guidance when the model learned them."
        )
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    model = gr.Dropdown(
                        choices=models,
                        value=models[0][1] if models else None,
                        label="Generator model",
                        elem_id="csample-model",
                    )
                    mode = gr.Radio(modes, value=modes[0], label="Mode", elem_id="csample-mode")
                formula = gr.Textbox(
                    value="SrTiO3",
                    label="Formula (the cell holds it as written)",
                    visible=False,
                    elem_id="csample-formula",
                )
                with gr.Row() as de_novo_box:
                    elements = gr.Textbox(
                        label="Allowed elements (optional, e.g. Sr,Ti,O,N)",
                        scale=2,
                        elem_id="csample-elements",
                    )
                    n_atoms = gr.Number(  # no minimum: an empty number arrives as 0
                        value=None,
                        precision=0,
                        maximum=cs.MAX_ATOMS,
                        label="Atoms per cell (empty or 0: drawn as in training)",
                        elem_id="csample-atoms",
                    )
                with gr.Row():
                    targets = gr.Textbox(
                        label="Property targets (optional): NAME=VALUE, one a line or "
                        "comma-separated, e.g. heat_ref=-0.5",
                        lines=2,
                        scale=3,
                        elem_id="csample-targets",
                    )
                    guidance = gr.Number(
                        value=1.0,
                        minimum=0,
                        label="Guidance scale",
                        visible=False,
                        elem_id="csample-guidance",
                    )
            with gr.Column(scale=2):
                with gr.Row():
                    n = gr.Number(
                        value=cs.DEFAULT_SAMPLES,
                        precision=0,
                        minimum=cs.SAMPLE_RANGE[0],
                        maximum=cs.SAMPLE_RANGE[1],
                        label=f"Structures (up to {cs.SAMPLE_RANGE[1]})",
                        elem_id="csample-n",
                    )
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                relax = gr.Checkbox(
                    value=False,
                    label=f"Relax with CHGNet ({cs.RELAX_STEPS} FIRE steps each, seconds per "
                    "structure) and rank by energy",
                    elem_id="csample-relax",
                )
                with gr.Row():
                    run_btn = gr.Button("Sample crystals", variant="primary", elem_id="csample-run")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="csample-stop")
        status = gr.Markdown(elem_id="csample-status")
        with gr.Row():
            image = gr.Image(
                type="filepath",
                label="First valid structure",
                interactive=False,
                height=300,
                elem_id="csample-best",
            )
            model3d = gr.Model3D(
                label="First valid structure (3-D, drag to rotate)",
                height=300,
                elem_id="csample-best-3d",
            )
        info = gr.Markdown(elem_id="csample-best-info")
        table = hidden_table(
            "Generated structures (valid: no atoms closer than 0.5 Å; de novo also "
            "charge-balanced)",
            "csample-table",
        )
        download = gr.DownloadButton(
            "Download the run (candidates.csv, CIFs; .zip)",
            visible=False,
            elem_id="csample-download",
        )

    def on_mode(label: str) -> tuple[Any, ...]:
        csp = cs.MODES.get(label) == "csp"
        return gr.Textbox(visible=csp), gr.Row(visible=not csp)

    mode.change(on_mode, [mode], [formula, de_novo_box])
    targets.change(
        lambda text: gr.Number(visible=bool(cs.split_targets(text))), [targets], [guidance]
    )

    def run(
        session: SessionState,
        model_name: str,
        mode_label: str,
        formula_text: str,
        elements_text: str,
        atoms_value: float | None,
        targets_text: str,
        guidance_value: float | None,
        n_value: float | None,
        seed_value: float | None,
        relax_on: bool,
    ) -> Iterator[tuple[Any, ...]]:
        hidden = (gr.Dataframe(visible=False), gr.DownloadButton(visible=False))
        try:
            request = cs.make_sample_request(
                model_name,
                mode_label,
                formula_text,
                n_value,
                seed_value,
                elements=elements_text,
                n_atoms=atoms_value,
                targets=targets_text,
                guidance=guidance_value,
                relax=relax_on,
            )
        except ValueError as err:
            yield (cs.error_status(err), None, None, "", *hidden)
            return
        stop = threading.Event()
        session.generation_stop = stop
        start = time.perf_counter()
        thread, reports = run_in_thread(
            cs.run_sampling, stop, request=request, root=session.workdir / "crystals"
        )
        what = f"**{request.formula}**" if request.formula else "de novo crystals"
        yield (f"Starting: {request.n} structures of {what}…", None, None, "", *hidden)
        outcome: tuple[str, Any] | None = None
        stage = "starting"
        try:
            for progress, outcome in relay(thread, reports, REFRESH_S):
                if progress:
                    stage = str(progress[-1][0])
                if outcome is None:
                    yield (
                        f"Sampling {what} with **{request.model}**: {stage} · "
                        f"{time.perf_counter() - start:.0f} s",
                        *(gr.skip(),) * 5,
                    )
        finally:
            stop.set()
        assert outcome is not None  # relay ends only with one
        kind, payload = outcome
        if kind == "stopped":
            yield ("Stopped before the structures were sampled.", None, None, "", *hidden)
            return
        if kind == "error":
            yield (cs.error_status(payload), None, None, "", *hidden)
            return
        yield _sample_outputs(payload, time.perf_counter() - start, session)

    run_btn.click(
        run,
        [state, model, mode, formula, elements, n_atoms, targets, guidance, n, seed, relax],
        [status, image, model3d, info, table, download],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
        show_progress="minimal",
    )
    stop_btn.click(SessionState.stop_generation, [state], None)
    return box


def _sample_outputs(outcome: Any, seconds: float, session: SessionState) -> tuple[Any, ...]:
    """Status, first valid structure (picture, 3-D, summary), table and zip of a run."""
    from matfuse.app import crystal_sampling as cs
    from matfuse.app.crystal_design import zip_run
    from matfuse.app.crystal_view import view_structure

    image = model3d = None
    info = "No valid structure to draw."
    first = cs.first_valid_structure(outcome.table)
    if first is not None:
        index, structure = first
        view = view_structure(structure, outcome.out_dir / "views", "first-valid")
        image, model3d = str(view.image), str(view.model3d)
        relaxed = " (relaxed)" if outcome.request.relax else ""
        info = view.markdown(f"First valid structure{relaxed}: candidate {index}")
    archive = zip_run(outcome.out_dir, session.workdir / f"{outcome.out_dir.name}.zip")
    return (
        cs.sample_summary(outcome, seconds),
        image,
        model3d,
        info,
        gr.Dataframe(cs.shown_sample_table(outcome.table), visible=True),
        gr.DownloadButton(value=str(archive), visible=True),
    )
