"""What the Generate tab shows of a search: the live curve, the ranked table, its captions.

Split from :mod:`matfuse.app.generate_tab` (the layout) so the logic is testable alone. A
stopped search keeps what it scored: the worker raises
:class:`~matfuse.generate.api.SearchStopped` from its progress callback and
:func:`~matfuse.generate.api.generate` ranks the molecules scored so far
(``table.attrs["stopped"]``), so Stop gives the same table and download as a finished run.
Molecules already in the reference corpus are marked in the gallery, and the status says
how many of the scored molecules are novel.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.plots import depict, depiction_gallery
from matfuse.app.predict_tab import csv_safe
from matfuse.app.seed_compare import seed_comparison

__all__ = [
    "GenerationStopped",
    "LiveCurve",
    "best_depiction",
    "novelty_text",
    "relay",
    "result_outputs",
    "run_in_thread",
    "shown_table",
    "top_captions",
    "write_candidates",
]

#: Rows of the ranked table shown (the CSV has all of them).
SHOWN_ROWS = 100
#: Depictions of the top candidates drawn.
SHOWN_DEPICTIONS = 12
IN_CORPUS = "in corpus"


def _stop_base() -> type[Exception]:
    try:
        from matfuse.generate.api import SearchStopped
    except Exception:  # noqa: BLE001 - generation not installed: nothing to inherit
        return Exception
    return SearchStopped


class GenerationStopped(_stop_base()):  # type: ignore[misc]
    """Raised inside the search (from its progress callback) to end it early; the library
    then ranks what was scored (it is its ``SearchStopped``)."""


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ranked candidates as displayed: rank, SMILES, score, each term's value, novelty."""
    drop = [c for c in table.columns if c.endswith("_d") or c in ("call", "nearest_neighbour")]
    out = table.drop(columns=drop).head(SHOWN_ROWS)
    first = [c for c in ("rank", "smiles", "score") if c in out.columns]
    out = out[first + [c for c in out.columns if c not in first]].copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(3)
    return out


def top_captions(table: pd.DataFrame) -> list[str]:
    """Gallery captions: rank, score, the raw value of each objective term, and
    ``in corpus`` for a molecule that is not new (the reference set already holds it)."""
    terms = [c[:-2] for c in table.columns if c.endswith("_d") and c[:-2] in table.columns]
    captions = []
    for i, (_, row) in enumerate(table.iterrows()):
        text = f"#{int(row['rank']) if 'rank' in row else i + 1}"
        if "novel" in row and not bool(row["novel"]):  # first: long captions are cut
            text += f" · {IN_CORPUS}"
        text += f" · score {row['score']:.3f}"
        for t in terms:
            if np.isfinite(row[t]):
                text += f" · {t} {row[t]:.3g}"
        captions.append(text)
    return captions


def novelty_text(table: pd.DataFrame, top: int) -> str:
    """``"**41 of 50** scored molecules are novel ...; 2 of the top 12 are in the corpus"``."""
    if "novel" not in table.columns or table.empty:
        return ""
    novel = table["novel"].astype(bool)
    head = novel.head(top)
    text = (
        f"**{int(novel.sum()):,} of {len(table):,}** scored molecules are novel (not in the "
        "reference corpus)"
    )
    known = int((~head).sum())
    if known:
        text += f"; {known} of the top {len(head)} are already in it (marked *{IN_CORPUS}*)"
    return text + "."


def write_candidates(table: pd.DataFrame, directory: Path) -> Path:
    path = directory / "matfuse-candidates.csv"
    csv_safe(table).to_csv(path, index=False)
    return path


@dataclass
class LiveCurve:
    """Best score against oracle calls, as reported while a search runs."""

    calls: list[int]
    best: list[float]
    best_smiles: str = ""

    def curve(self) -> pd.DataFrame:
        return pd.DataFrame({"oracle calls": self.calls, "best score": self.best})


def run_in_thread(
    generate: Callable[..., pd.DataFrame], stop: threading.Event, **kwargs: Any
) -> tuple[threading.Thread, queue.Queue[tuple[str, Any]]]:
    """Start ``generate(**kwargs)`` in a daemon thread; reports arrive on the queue.

    Items are ``("progress", report)``, ``report`` the tuple of the arguments the search
    passed to its progress callback (``(n_calls, best_score, best_smiles)`` for molecules,
    ``(n_done, budget, best_energy, best_origin)`` for crystals), then one of
    ``("done", result)`` (also after a stop, when the library kept what was scored:
    ``table.attrs["stopped"]``), ``("stopped", None)`` (a search that could not keep
    anything) or ``("error", exception)``.
    """
    reports: queue.Queue[tuple[str, Any]] = queue.Queue()

    def on_progress(*report: Any) -> None:
        if stop.is_set():
            raise GenerationStopped
        reports.put(("progress", report))

    def work() -> None:
        try:
            reports.put(("done", generate(on_progress=on_progress, **kwargs)))
        except GenerationStopped:
            reports.put(("stopped", None))
        except Exception as err:  # noqa: BLE001 - shown to the user, the server keeps going
            reports.put(("error", err))

    thread = threading.Thread(target=work, name="matfuse-generate", daemon=True)
    thread.start()
    return thread, reports


def relay(
    thread: threading.Thread, reports: queue.Queue[tuple[str, Any]], refresh_s: float
) -> Iterator[tuple[list[tuple[Any, ...]], tuple[str, Any] | None]]:
    """Every ``refresh_s`` while the search of :func:`run_in_thread` runs: the progress
    reports that arrived since the last time, and ``None`` until its outcome (``("done",
    result)``, ``("stopped", None)`` or ``("error", exc)``), which comes with the last item.

    A worker that died without a word gives ``("error", RuntimeError(...))``, so a page
    never waits for ever.
    """
    while True:
        thread.join(refresh_s)
        progress: list[tuple[Any, ...]] = []
        outcome: tuple[str, Any] | None = None
        while True:
            try:
                kind, payload = reports.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                progress.append(payload)
            else:
                outcome = (kind, payload)
        if outcome is None and not thread.is_alive() and reports.empty():
            outcome = ("error", RuntimeError("the search ended without a result"))
        yield progress, outcome
        if outcome is not None:
            return


def result_outputs(
    result: pd.DataFrame,
    seen: LiveCurve,
    seconds: float,
    strategy_name: str,
    n_budget: int,
    seed: int,
    seed_smiles: str | None,
    session: Any,
) -> tuple[Any, ...]:
    """Status, best picture, curve, gallery, ranked table, download and the seed comparison
    of a finished or stopped search (a stop keeps everything scored until then)."""
    csv_path = write_candidates(result, session.workdir)
    head = result.head(SHOWN_DEPICTIONS)
    items = depiction_gallery(list(head["smiles"]), top_captions(head))
    if len(result):
        seen.calls.append(int(result.attrs.get("n_calls", seen.calls[-1])))
        seen.best.append(float(result["score"].iloc[0]))
    best = result.iloc[0] if len(result) else None
    if result.attrs.get("stopped"):
        text = (
            f"**Stopped** after {len(result):,} molecules scored ({seconds:.1f} s, "
            f"{strategy_name}, budget {n_budget:,}, seed {seed}): what was scored is kept below."
        )
    else:
        text = (
            f"**Done:** {len(result):,} molecules scored in {seconds:.1f} s "
            f"({strategy_name}, budget {n_budget:,}, seed {seed})."
        )
    if best is not None:
        text += f" Best score **{best['score']:.3f}**: `{best['smiles']}`."
    novel = novelty_text(result, SHOWN_DEPICTIONS)
    if novel:
        text += f"\n\n{novel}"
    comparison = seed_comparison(seed_smiles, list(result["smiles"]))
    return (
        text,
        best_depiction(str(best["smiles"])) if best is not None else None,
        seen.curve(),
        gr.Gallery(items, visible=bool(items)),
        gr.Dataframe(shown_table(result), visible=True),
        gr.DownloadButton(value=str(csv_path), visible=True),
        gr.Dataframe(comparison, visible=comparison is not None),
    )


def best_depiction(smiles: str) -> Any:
    """The best-so-far depiction (``None`` before any molecule was scored)."""
    return depict(smiles, size=(320, 240)) if smiles else None
