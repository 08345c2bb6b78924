"""The Generate tab's crystal mode: the layout and events (the logic is in
:mod:`matfuse.app.crystal_design` and :mod:`matfuse.app.crystal_sampling`).

Two tasks share one form: structure prediction of a formula (``matfuse csp``) and a
chemical-system search (``matfuse crystal-search``) ranked by the hull or by an objective
that may use the model trained in the Learn tab on compositions or structures. The search
runs in a worker thread as the molecular one does; the page shows the relaxations done, the
best energy so far and its curve twice a second, and Stop keeps what was relaxed.

A third task, sampling a learned generator (``matfuse crystal-generate``), relaxes nothing
unless asked, so it has its own form and results (:mod:`matfuse.app.crystal_sampling_form`),
shown in place of the search's.

Without the materials extra (pymatgen, CHGNet) the mode says so and the molecular mode is
unaffected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from matfuse.app.crystal_sampling_form import sampling_section
from matfuse.app.generate_results import relay, run_in_thread
from matfuse.app.kinds import kind_view
from matfuse.app.state import COMPUTE_SLOTS, REFRESH_S, SessionState
from matfuse.app.widgets import hidden_table

__all__ = ["CrystalMode", "build", "crystal_model_choices", "crystal_model_term"]


def crystals_available() -> str:
    """``""`` when crystal search can run here, else why not."""
    try:
        import matfuse.crystals.explore  # noqa: F401
        import matfuse.crystals.search  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means "extra not installed"
        return f"{type(err).__name__}: {err}"
    return ""


def crystal_model_choices(session: SessionState) -> list[str]:
    """Targets of the session's trained model if it reads compositions or structures."""
    model = session.model
    kind = getattr(model, "input_type", None)
    # a kind the molecular mode designs (molecules) cannot score crystals
    if model is None or not kind or kind_view(kind).generation:
        return []
    return list(getattr(model, "target_names_", []) or [])


def crystal_model_term(
    session: SessionState, target: str | None, low: Any, high: Any
) -> dict[str, Any]:
    """The model part of the crystal objective, checked against the session's model."""
    names = crystal_model_choices(session)
    if not names or session.model_dir is None:
        raise ValueError(
            "Train a model on compositions or crystal structures in the Learn tab first "
            "to use its predictions as a target."
        )
    output = target if target in names else names[0]
    return {"path": session.model_dir, "output": output, "min": low, "max": high}


def crystal_model_note(session: SessionState) -> str:
    names = crystal_model_choices(session)
    if names:
        pm = session.model
        return (
            f"Trained model: **{' + '.join(pm.encoders)} → {pm.model}** on "
            f"{pm.input_type}s predicting **{', '.join(names)}**: candidates are scored by "
            "the probability that the prediction lands in the window."
        )
    if session.model is not None:
        return (
            "The trained model reads molecules; a crystal search needs one trained on "
            "compositions or structures."
        )
    return "No trained model yet: train one on compositions or structures to use it here."


@dataclass
class CrystalMode:
    """Components refreshed after training (the materials model target)."""

    model_target: gr.Dropdown | None
    model_note: gr.Markdown | None

    @property
    def refreshed(self) -> list[Any]:
        return [self.model_target, self.model_note]

    def after_training(self, session: SessionState) -> tuple[Any, ...]:
        names = crystal_model_choices(session)
        return (
            gr.Dropdown(choices=names, value=names[0] if names else None),
            crystal_model_note(session),
        )


def _known_structures(session: SessionState) -> list[Any]:
    table = session.table
    if table is None or not kind_view(session.kind).structure_view:
        raise ValueError(
            "Load crystal structures in the Data tab to use them as known phases, or untick "
            "'known phases'."
        )
    return [s for s in table.parsed.structures if s is not None]


def build(state: gr.State) -> CrystalMode:
    """Lay out the crystal mode and wire its events (or explain why it is unavailable)."""
    from matfuse.app import crystal_sampling as cs

    reason = crystals_available()
    if reason:
        gr.Markdown(
            "**Crystal design needs the materials extra** (pymatgen, CHGNet): "
            f"`pip install 'matfuse[materials]'`. ({reason})",
            elem_id="cgen-unavailable",
        )
        return CrystalMode(None, None)
    from matfuse.app import crystal_design as cd

    gr.Markdown(
        "Propose crystal structures and rank them by their CHGNet energy: of one formula "
        "(structure prediction, as `matfuse csp`) or across a chemical system (as "
        "`matfuse crystal-search`, with stability, uniqueness and novelty). The budget counts "
        "relaxations, a few CPU seconds each. Pressing Generate again with a larger budget "
        "continues the same search. Or sample a learned generator (as "
        "`matfuse crystal-generate`): many structures in seconds, unrelaxed unless asked."
    )
    tasks = [*cd.TASKS, cs.SAMPLE_TASK]
    task = gr.Radio(tasks, value=tasks[0], label="Task", elem_id="cgen-task")
    with gr.Column() as search_box:
        crystals = _search_section(state, task)
    sample_box = sampling_section(state)

    def show_task(label: str) -> tuple[Any, ...]:
        sampling = label == cs.SAMPLE_TASK
        return gr.Column(visible=not sampling), gr.Column(visible=sampling)

    task.change(show_task, [task], [search_box, sample_box])
    return crystals


def _search_section(state: gr.State, task: gr.Radio) -> CrystalMode:
    """The relaxation searches' form and results (structure prediction, system search)."""
    from matfuse.app import crystal_design as cd
    from matfuse.crystals.generators import DEFAULT_EXPLORE_STRATEGY, DEFAULT_STRATEGY
    from matfuse.crystals.search import DEFAULT_RELAX_STEPS

    with gr.Row():
        with gr.Column(scale=3):
            formula = gr.Textbox(
                value="NaCl",
                label="Formula (one formula unit as written: C8 with Z = 1 is eight atoms)",
                elem_id="cgen-formula",
            )
            elements = gr.Textbox(
                value="Li,Co,O",
                label="Elements of the chemical system",
                visible=False,
                elem_id="cgen-elements",
            )
            with gr.Group(visible=False) as objective_box:
                gr.Markdown(
                    "**Ranking.** By energy above the hull unless a target is chosen; targets "
                    "are combined with stability by their geometric mean."
                )
                hull_max = gr.Number(
                    value=0.1, label="Energy above hull at most (eV/atom)", min_width=120
                )
                with gr.Row():
                    use_model = gr.Checkbox(
                        value=False, label="Predicted property (trained model)", scale=2
                    )
                    model_target = gr.Dropdown(choices=[], label="Target", min_width=90)
                    model_lo = gr.Number(value=None, label="min", min_width=80)
                    model_hi = gr.Number(value=None, label="max", min_width=80)
                note = gr.Markdown(crystal_model_note(SessionState()))
                with gr.Row():
                    require = gr.Textbox(label="Must contain (e.g. Li)", scale=1)
                    exclude = gr.Textbox(label="Must not contain (e.g. Co)", scale=1)
                low_hhi = gr.Checkbox(
                    value=False, label="Low supply-chain risk (HHI of production)"
                )
            use_known = gr.Checkbox(
                value=False,
                label="The loaded structures are known phases (hull, substitution sources, "
                "novelty)",
                elem_id="cgen-known",
            )
        with gr.Column(scale=2):
            strategy = gr.Dropdown(
                choices=cd.crystal_strategy_choices(),
                value=DEFAULT_STRATEGY,
                label="Strategy",
                elem_id="cgen-strategy",
            )
            with gr.Row():
                budget = gr.Number(
                    value=cd.DEFAULT_CRYSTAL_BUDGET,
                    precision=0,
                    minimum=cd.CRYSTAL_BUDGET_RANGE[0],
                    maximum=cd.CRYSTAL_BUDGET_RANGE[1],
                    label=f"Budget (relaxations, up to {cd.CRYSTAL_BUDGET_RANGE[1]})",
                    elem_id="cgen-budget",
                )
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            with gr.Row():
                z_low = gr.Number(value=1, precision=0, minimum=1, label="Z from")
                z_high = gr.Number(value=4, precision=0, minimum=1, label="Z to")
                steps = gr.Number(
                    value=DEFAULT_RELAX_STEPS, precision=0, minimum=1, label="FIRE steps"
                )
            with gr.Row():
                run_btn = gr.Button("Generate crystals", variant="primary", elem_id="cgen-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="cgen-stop")
    status = gr.Markdown(elem_id="cgen-status")
    with gr.Row():
        best_image = gr.Image(
            type="filepath",
            label="Best structure",
            interactive=False,
            height=300,
            elem_id="cgen-best",
        )
        best_3d = gr.Model3D(
            label="Best structure (3-D, drag to rotate)", height=300, elem_id="cgen-best-3d"
        )
        curve = gr.LinePlot(
            x="relaxation",
            y="energy",
            color="series",
            y_title="energy per atom (eV)",
            color_map={"candidate": "#9ca3af", "best so far": "#4f46e5"},
            height=300,
            label="Energy per atom vs relaxations",
            elem_id="cgen-curve",
        )
    best_info = gr.Markdown(elem_id="cgen-best-info")
    table = hidden_table(
        "Ranked candidates (stable: within the hull threshold; unique: no lower-energy match; "
        "novel: matches no loaded structure; sun: all three)",
        "cgen-table",
    )
    download = gr.DownloadButton(
        "Download the run (candidates.csv, CIFs, plot; .zip)",
        visible=False,
        elem_id="cgen-download",
    )

    def on_task(label: str) -> tuple[Any, ...]:
        system = cd.TASKS.get(label) == "explore"
        return (
            gr.Textbox(visible=not system),
            gr.Textbox(visible=system),
            gr.Group(visible=system),
            2 if system else 4,
            DEFAULT_EXPLORE_STRATEGY if system else DEFAULT_STRATEGY,  # each the CLI's
        )

    task.change(on_task, [task], [formula, elements, objective_box, z_high, strategy])

    def run(
        session: SessionState,
        task_label: str,
        formula_text: str,
        elements_text: str,
        hull: float | None,
        model_on: bool,
        target: str | None,
        lo: float | None,
        hi: float | None,
        required: str,
        excluded: str,
        hhi_on: bool,
        known_on: bool,
        strategy_name: str,
        budget_value: float | None,
        seed_value: float | None,
        z_lo: float | None,
        z_hi: float | None,
        steps_value: float | None,
    ) -> Iterator[tuple[Any, ...]]:
        try:
            objective = None
            if cd.TASKS.get(task_label) == "explore":
                objective = cd.crystal_objective_spec(
                    hull_max=hull,
                    model=crystal_model_term(session, target, lo, hi) if model_on else None,
                    require=required or "",
                    exclude=excluded or "",
                    low_hhi=hhi_on,
                )
                if objective is not None:
                    from matfuse.crystals.objectives import load_crystal_objective

                    load_crystal_objective(objective)  # mistakes show at once
            request = cd.make_request(
                task_label,
                formula_text,
                elements_text,
                strategy_name,
                budget_value,
                seed_value,
                z_lo,
                z_hi,
                steps_value,
                objective=objective,
                known=_known_structures(session) if known_on else (),
            )
        except ValueError as err:  # SpecError is a ValueError
            raise gr.Error(str(err), title="Crystal search not started") from None

        stop = threading.Event()
        session.generation_stop = stop
        root = session.workdir / "crystals"
        start = time.perf_counter()
        thread, reports = run_in_thread(cd.run_crystal_design, stop, request=request, root=root)
        live: list[dict[str, Any]] = []
        hidden = (gr.Dataframe(visible=False), gr.DownloadButton(visible=False))
        yield (
            f"Starting **{request.strategy}** on **{request.target}** with a budget of "
            f"{request.budget} relaxations (the first one also loads CHGNet)…",
            None,
            None,
            None,  # an empty frame would fix the plot's axis types for good (Gradio 6)
            "",
            *hidden,
        )
        outcome: tuple[str, Any] | None = None
        try:
            for progress, outcome in relay(thread, reports, REFRESH_S):
                for n_done, _, best_e, _ in progress:
                    if np.isfinite(best_e):
                        live.append(
                            {"relaxation": n_done, "energy": best_e, "series": "best so far"}
                        )
                if outcome is None and progress:
                    n_done, n_budget, best_e, origin = progress[-1]
                    best = f"{best_e:.3f} eV/atom ({origin})" if np.isfinite(best_e) else "none yet"
                    yield (
                        f"Running **{request.strategy}** on **{request.target}**: {n_done} / "
                        f"{n_budget} relaxations · best **{best}** · "
                        f"{time.perf_counter() - start:.0f} s",
                        gr.skip(),
                        gr.skip(),
                        cd.curve_frame(live) if live else gr.skip(),
                        gr.skip(),
                        *(gr.skip(),) * 2,
                    )
        finally:
            stop.set()
        assert outcome is not None  # relay ends only with one
        kind, payload = outcome
        seconds = time.perf_counter() - start
        if kind == "stopped":
            yield (
                "Stopped before the first relaxation finished: nothing to rank.",
                None,
                None,
                gr.skip(),
                "",
                *hidden,
            )
            return
        if kind == "error":
            raise gr.Error(f"{type(payload).__name__}: {payload}", title="Crystal search failed")
        # the plot keeps the series of the first frame it drew (Gradio 6): clear it so that
        # the final frame's "candidate" series is drawn beside the live "best so far"
        yield (gr.skip(), gr.skip(), gr.skip(), None, *(gr.skip(),) * 3)
        yield _outputs(payload, seconds, session)

    def _outputs(outcome: cd.CrystalOutcome, seconds: float, session: SessionState) -> tuple:
        from matfuse.app.crystal_view import view_structure

        result = outcome.result
        image = model3d = None
        info = ""
        best = result.best
        if best is not None and best.relaxed is not None:
            view = view_structure(best.relaxed, outcome.out_dir / "views", "best")
            image, model3d = str(view.image), str(view.model3d)
            info = view.markdown("Best candidate (relaxed)")
        archive = cd.zip_run(outcome.out_dir, session.workdir / f"{outcome.out_dir.name}.zip")
        return (
            cd.crystal_summary(outcome, seconds),
            image,
            model3d,
            cd.energy_curve(result),
            info,
            gr.Dataframe(cd.shown_crystal_table(result), visible=True),
            gr.DownloadButton(value=str(archive), visible=True),
        )

    run_btn.click(
        run,
        [
            state,
            task,
            formula,
            elements,
            hull_max,
            use_model,
            model_target,
            model_lo,
            model_hi,
            require,
            exclude,
            low_hhi,
            use_known,
            strategy,
            budget,
            seed,
            z_low,
            z_high,
            steps,
        ],
        [status, best_image, best_3d, curve, best_info, table, download],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
        show_progress="minimal",
    )
    stop_btn.click(SessionState.stop_generation, [state], None)
    return CrystalMode(model_target, note)
