"""The Generate tab: set design targets, run a search strategy, watch the best-so-far live.

Everything runs through :func:`matfuse.generate.api.generate`, the same call as
``matfuse generate``. The search runs in a worker thread; the event handler is a generator
that relays the strategy's ``on_progress`` reports to the page twice a second, so the UI never
freezes and a Stop (or a closed tab) ends the search at its next progress report.

Generation is optional: if :mod:`matfuse.generate` cannot be imported, the tab says so and the
rest of the app is unaffected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.crystal_mode import CrystalMode
from matfuse.app.generate_results import (
    GenerationStopped,
    LiveCurve,
    best_depiction,
    relay,
    result_outputs,
    run_in_thread,
    shown_table,
    top_captions,
    write_candidates,
)
from matfuse.app.kinds import DEFAULT_KIND, kind_view, noun
from matfuse.app.state import COMPUTE_SLOTS, REFRESH_S, SessionState
from matfuse.app.widgets import hidden_gallery, hidden_table

__all__ = [
    "GenerationStopped",
    "LiveCurve",
    "build",
    "objective_spec",
    "run_in_thread",
    "shown_table",
    "top_captions",
    "write_candidates",
]

#: Oracle-call budgets offered; the server is shared, so very long searches belong in the CLI.
BUDGET_RANGE = (50, 5000)
DEFAULT_BUDGET = 500
#: At most this many of the loaded dataset's molecules seed the search.
MAX_INITIAL = 2000
MODEL_GOALS = {"in the window": "range", "maximise": "maximize", "minimise": "minimize"}


def generation_api() -> tuple[Callable[..., pd.DataFrame] | None, dict[str, Any], str]:
    """``(generate, STRATEGIES, "")`` or ``(None, {}, reason)`` when generation is missing."""
    try:
        from matfuse.generate.api import STRATEGIES, generate
    except Exception as err:  # noqa: BLE001 - any import failure means "not installed here"
        return None, {}, f"{type(err).__name__}: {err}"
    return generate, dict(STRATEGIES), ""


def strategy_choices(strategies: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Dropdown choices: ``("graph-ga — first docstring line", "graph-ga")``."""
    out = []
    for name, cls in strategies.items():
        doc = (getattr(cls, "__doc__", None) or "").strip().splitlines()
        out.append((f"{name} — {doc[0].rstrip('.')}" if doc else name, name))
    return out


def _bound(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def objective_spec(
    *,
    qed: bool = False,
    logp: tuple[float | None, float | None] | None = None,
    model: Mapping[str, Any] | None = None,
    similar_to: str | None = None,
) -> dict[str, Any]:
    """The objective spec (see :mod:`matfuse.generate.objectives`) for the chosen targets.

    ``model`` holds ``path``, ``output``, ``goal`` (a :data:`MODEL_GOALS` value) and, for a
    window, ``min``/``max``. Raises ``ValueError`` with a user-facing message.
    """
    terms: list[dict[str, Any]] = []
    if qed:
        terms.append({"property": "qed", "goal": "maximize"})
    if logp is not None:
        low, high = (_bound(v) for v in logp)
        if low is None and high is None:
            raise ValueError("Give the logP window a minimum and/or a maximum.")
        terms.append({"property": "logp", "min": low, "max": high, "sigma": 0.5})
    if model is not None:
        term: dict[str, Any] = {
            "property": "model",
            "name": f"pred_{model['output']}",
            "path": str(model["path"]),
            "output": model["output"],
            "goal": model.get("goal", "range"),
        }
        if term["goal"] == "range":
            low, high = _bound(model.get("min")), _bound(model.get("max"))
            if low is None and high is None:
                raise ValueError(
                    f"Give the window for predicted {model['output']} a minimum and/or a maximum."
                )
            term.update({"min": low, "max": high})
        terms.append(term)
    if similar_to is not None:
        seed = similar_to.strip()
        if not seed:
            raise ValueError("Paste the seed SMILES to stay similar to.")
        terms.append({"property": "similarity", "smiles": seed, "goal": "maximize"})
    if not terms:
        raise ValueError("Choose at least one target.")
    return {"terms": terms}


def model_target_choices(session: SessionState) -> list[str]:
    """Targets of the session's trained model (empty before training).

    Only a model of a kind the Generate tab designs (molecules) can score the candidates; a
    materials model is not offered.
    """
    model = session.model
    if model is None or not kind_view(getattr(model, "input_type", DEFAULT_KIND)).generation:
        return []
    return list(getattr(model, "target_names_", []) or [])


def model_term(
    session: SessionState, target: str | None, goal_label: str, low: Any, high: Any
) -> dict[str, Any]:
    """The model part of the spec, checked against what this session has trained."""
    names = model_target_choices(session)
    if not names or session.model_dir is None or not Path(session.model_dir).exists():
        raise ValueError("Train a model in the Learn tab first to use it as a target.")
    output = target if target in names else names[0]
    kind = session.model.task_types_[names.index(output)]
    goal = MODEL_GOALS.get(goal_label, "range")
    if kind != "regression" and goal == "range":
        goal = "maximize"  # a classifier gives a probability: a window over it means little
    return {"path": session.model_dir, "output": output, "goal": goal, "min": low, "max": high}


def default_window(session: SessionState, target: str | None) -> tuple[float | None, float | None]:
    """A starting window for a model target: the upper quartile of its training labels.

    Only a suggestion the user edits; it spares them a meaningless default such as [0, 0].
    """
    table = session.table
    if table is None or target not in table.targets:
        return None, None
    values = table.target_matrix()[:, table.targets.index(target)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    return round(float(np.quantile(values, 0.75)), 2), round(float(values.max()), 2)


def model_note(session: SessionState) -> str:
    names = model_target_choices(session)
    if session.model is not None and not names:
        kind = getattr(session.model, "input_type", "")
        return (
            f"The trained model reads {kind}s; generation designs molecules, so it cannot "
            "be a target here. Train a model on molecules to use its predictions."
        )
    if not names:
        return "No trained model yet: train one in the **Learn** tab to use its predictions."
    pm = session.model
    return (
        f"Trained model: **{' + '.join(pm.encoders)} → {pm.model}** predicting "
        f"**{', '.join(names)}**; generated molecules are scored by the probability that the "
        "prediction (with its uncertainty) lands in the window."
    )


@dataclass
class GenerateTab:
    """Components refreshed after training: the model targets of both modes (each
    ``None`` where its mode is unavailable)."""

    model_target: gr.Dropdown | None
    model_note: gr.Markdown | None

    model_low: gr.Number | None = None
    model_high: gr.Number | None = None
    crystals: CrystalMode | None = None

    def _molecular(self) -> bool:
        return self.model_target is not None

    def _crystal(self) -> bool:
        return self.crystals is not None and self.crystals.model_target is not None

    @property
    def refreshed(self) -> list[Any]:
        """The outputs of :meth:`after_training` (empty: nothing to refresh)."""
        out: list[Any] = []
        if self._molecular():
            out += [self.model_target, self.model_note, self.model_low, self.model_high]
        if self._crystal():
            assert self.crystals is not None
            out += self.crystals.refreshed
        return out

    def after_training(self, session: SessionState) -> tuple[Any, ...]:
        out: tuple[Any, ...] = ()
        if self._molecular():
            names = model_target_choices(session)
            target = names[0] if names else None
            low, high = default_window(session, target)
            out += (gr.Dropdown(choices=names, value=target), model_note(session), low, high)
        if self._crystal():
            assert self.crystals is not None
            out += self.crystals.after_training(session)
        return out


def build(state: gr.State) -> GenerateTab:
    """Lay out the Generate tab, molecules and crystals, and wire its events.

    Each mode says so when what it needs is not installed; the other is unaffected.
    """
    from matfuse.app import crystal_mode

    with gr.Tab("5 · Generate", id="generate"):
        with gr.Tabs():
            with gr.Tab("Molecules", id="generate-molecules"):
                built = _build_molecules(state)
            with gr.Tab("Crystals", id="generate-crystals"):
                built.crystals = crystal_mode.build(state)
    return built


def _build_molecules(state: gr.State) -> GenerateTab:
    """The molecular mode (or why it is unavailable)."""
    generate, strategies, reason = generation_api()
    if generate is None or not strategies:
        gr.Markdown(
            "**Generation is not installed** in this environment, so this tab is "
            "unavailable; everything else works as usual.\n\n"
            f"(`matfuse.generate` could not be imported: {reason or 'no strategies'})",
            elem_id="generate-unavailable",
        )
        return GenerateTab(model_target=None, model_note=None)
    gr.Markdown(
        "Design new molecules: choose what they should be, a search strategy and a budget "
        "(the number of distinct molecules scored). Scores are in [0, 1]; several targets "
        "are combined by their geometric mean, so each must be met."
    )
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Group():
                use_qed = gr.Checkbox(
                    value=True, label="Maximise drug-likeness (QED)", elem_id="gen-qed"
                )
                with gr.Row():
                    use_logp = gr.Checkbox(value=False, label="logP in a window", scale=2)
                    logp_lo = gr.Number(value=1.0, label="logP min", min_width=90)
                    logp_hi = gr.Number(value=3.0, label="logP max", min_width=90)
                with gr.Row():
                    use_model = gr.Checkbox(
                        value=False,
                        label="Predicted property (trained model)",
                        scale=2,
                        elem_id="gen-model",
                    )
                    model_target = gr.Dropdown(
                        choices=[], label="Target", min_width=90, elem_id="gen-model-target"
                    )
                    model_goal = gr.Dropdown(
                        choices=list(MODEL_GOALS),
                        value="in the window",
                        label="Goal",
                        min_width=140,
                    )
                    model_lo = gr.Number(
                        value=None, label="min", min_width=80, elem_id="gen-model-min"
                    )
                    model_hi = gr.Number(
                        value=None, label="max", min_width=80, elem_id="gen-model-max"
                    )
                note = gr.Markdown(model_note(SessionState()), elem_id="gen-model-note")
                with gr.Row():
                    use_sim = gr.Checkbox(value=False, label="Similar to a seed", scale=1)
                    sim_smiles = gr.Textbox(
                        label="Seed SMILES", placeholder="CC(=O)Oc1ccccc1C(=O)O", scale=3
                    )
        with gr.Column(scale=2):
            names = list(strategies)
            strategy = gr.Dropdown(
                choices=strategy_choices(strategies),
                value="graph-ga" if "graph-ga" in names else names[0],
                label="Strategy",
                elem_id="gen-strategy",
            )
            with gr.Row():
                budget = gr.Number(
                    value=DEFAULT_BUDGET,
                    precision=0,
                    minimum=BUDGET_RANGE[0],
                    maximum=BUDGET_RANGE[1],
                    label=f"Budget (oracle calls, {BUDGET_RANGE[0]}–{BUDGET_RANGE[1]:,})",
                    elem_id="gen-budget",
                )
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            from_data = gr.Checkbox(value=False, label="Start from the loaded dataset's molecules")
            with gr.Row():
                run_btn = gr.Button("Generate", variant="primary", elem_id="gen-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="gen-stop")
    status = gr.Markdown(elem_id="gen-status")
    with gr.Row():
        best_image = gr.Image(
            label="Best so far",
            type="pil",
            height=240,
            interactive=False,
            elem_id="gen-best",
            scale=1,
        )
        curve = gr.LinePlot(
            x="oracle calls",
            y="best score",
            y_lim=[0, 1],
            height=240,
            label="Best score vs oracle calls",
            elem_id="gen-curve",
            scale=2,
        )
    top = hidden_gallery(
        "Top candidates (in corpus: already in the reference set, not new)",
        "gen-gallery",
        columns=4,
    )
    table = hidden_table(
        "Ranked candidates (pareto_rank: non-dominated front; novel: not in the corpus)",
        "gen-table",
    )
    download = gr.DownloadButton(
        "Download candidates (.csv)", visible=False, elem_id="gen-download"
    )
    compare = hidden_table(
        "Seed vs generated: QED, SA (1 easy .. 10 hard), logP, MW (g/mol), similarity",
        "gen-compare",
        max_height=420,
    )

    def run(
        session: SessionState,
        qed_on: bool,
        logp_on: bool,
        lo: float | None,
        hi: float | None,
        model_on: bool,
        target: str | None,
        goal_label: str,
        m_lo: float | None,
        m_hi: float | None,
        sim_on: bool,
        sim: str,
        strategy_name: str,
        budget_value: float | None,
        seed_value: float | None,
        start_from_data: bool,
    ) -> Iterator[tuple[Any, ...]]:
        try:
            spec = objective_spec(
                qed=qed_on,
                logp=(lo, hi) if logp_on else None,
                model=model_term(session, target, goal_label, m_lo, m_hi) if model_on else None,
                similar_to=sim if sim_on else None,
            )
            from matfuse.generate.objectives import load_objective

            objective = load_objective(spec)  # checked here so that mistakes show at once
            n_budget = int(budget_value or DEFAULT_BUDGET)
            if not BUDGET_RANGE[0] <= n_budget <= BUDGET_RANGE[1]:
                raise ValueError(
                    f"Budget must be between {BUDGET_RANGE[0]} and {BUDGET_RANGE[1]:,}."
                )
            initial = None
            if start_from_data:
                if session.table is None:
                    raise ValueError("Load a dataset first (Data tab), or untick 'Start from'.")
                if not kind_view(session.kind).generation:
                    raise ValueError(
                        f"The loaded data holds {noun(session.kind)}, not molecules; untick "
                        "'Start from' or load a molecule dataset."
                    )
                initial = [s for s in session.table.parsed.canonical if s][:MAX_INITIAL]
        except ValueError as err:  # SpecError is a ValueError
            raise gr.Error(str(err), title="Generation not started") from None

        stop = threading.Event()
        session.generation_stop = stop
        hidden = (
            gr.Gallery(visible=False),
            gr.Dataframe(visible=False),
            gr.DownloadButton(visible=False),
            gr.Dataframe(visible=False),
        )
        start = time.perf_counter()
        thread, reports = run_in_thread(
            generate,
            stop,
            objective=objective,
            strategy=strategy_name,
            budget=n_budget,
            seed=int(seed_value or 0),
            initial=initial,
            progress_every=max(5, n_budget // 100),
        )
        seen = LiveCurve(calls=[0], best=[0.0])
        yield (
            f"Starting **{strategy_name}** with a budget of {n_budget:,}…",
            None,
            seen.curve(),
            *hidden,
        )
        outcome: tuple[str, Any] | None = None
        try:
            for progress, outcome in relay(thread, reports, REFRESH_S):
                new_best = False
                for n_calls, best, smiles in progress:
                    seen.calls.append(int(n_calls))
                    seen.best.append(float(best))
                    new_best |= str(smiles) != seen.best_smiles
                    seen.best_smiles = str(smiles)
                if outcome is None and len(seen.calls) > 1:
                    yield (
                        f"Running **{strategy_name}**: {seen.calls[-1]:,} / {n_budget:,} oracle "
                        f"calls · best score **{seen.best[-1]:.3f}** · "
                        f"{time.perf_counter() - start:.0f} s",
                        best_depiction(seen.best_smiles) if new_best else gr.skip(),
                        seen.curve(),
                        *(gr.skip(),) * 4,
                    )
        finally:
            stop.set()  # also ends the search if the page went away mid-run
        assert outcome is not None  # relay ends only with one
        kind, payload = outcome
        seconds = time.perf_counter() - start
        if kind == "stopped":  # a library that could not keep what it scored
            yield (
                f"Stopped after {seen.calls[-1]:,} oracle calls ({seconds:.0f} s); best so "
                f"far {seen.best[-1]:.3f}: `{seen.best_smiles}`.",
                gr.skip(),
                seen.curve(),
                *hidden,
            )
            return
        if kind == "error":
            raise gr.Error(f"{type(payload).__name__}: {payload}", title="Generation failed")
        result: pd.DataFrame = payload
        yield result_outputs(
            result, seen, seconds, strategy_name, n_budget, int(seed_value or 0), sim, session
        )

    run_btn.click(
        run,
        [
            state,
            use_qed,
            use_logp,
            logp_lo,
            logp_hi,
            use_model,
            model_target,
            model_goal,
            model_lo,
            model_hi,
            use_sim,
            sim_smiles,
            strategy,
            budget,
            seed,
            from_data,
        ],
        [status, best_image, curve, top, table, download, compare],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
        show_progress="minimal",
    )
    stop_btn.click(SessionState.stop_generation, [state], None)
    built = GenerateTab(model_target, note, model_lo, model_hi)
    model_target.input(
        lambda session, target: default_window(session, target),
        [state, model_target],
        [model_lo, model_hi],
    )
    return built
