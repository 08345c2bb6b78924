"""The Data tab: load a bundled dataset or an upload, inspect it, choose columns and the split.

The pure helpers (``describe_*``, ``apply_choices``) hold the logic and are unit-tested; the
``build`` function only wires them to components. Loading a dataset immediately applies a
sensible default split, so a first-time user can go straight to *Learn*.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.datasets import BUNDLED, DEFAULT_DATASET
from matfuse.app.state import SessionState
from matfuse.app.uploads import (
    ALLOWED_EXTENSIONS,
    MAX_UPLOAD_MB,
    UploadError,
    provided_split_labels,
    read_upload,
    table_from_frame,
    validation_message,
)
from matfuse.benchmark import split_table
from matfuse.io.table import MoleculeTable

#: UI label → splitter name of :func:`matfuse.evaluate.make_splitter`.
SPLITS: dict[str, str] = {
    "as provided": "predefined",
    "random": "random",
    "scaffold (Bemis–Murcko groups)": "scaffold",
    "cluster (Butina on Morgan fingerprints)": "cluster",
    "OOD (highest target values held out)": "ood",
}
PREVIEW_ROWS = 200
PROBLEM_ROWS = 1000
_ID_LIKE = ("id", "index", "idx", "unnamed", "row", "cid", "name")


def split_choices(has_provided: bool) -> list[str]:
    """ "as provided" only makes sense when the data came with train/valid/test labels."""
    return [k for k in SPLITS if has_provided or SPLITS[k] != "predefined"]


def numeric_columns(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    """Columns whose values are mostly numbers: the candidates for targets."""
    out = []
    for col in frame.columns:
        if col in exclude or str(col).startswith("_"):
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        present = frame[col].notna().sum()
        if present and values.notna().sum() >= 0.5 * present:
            out.append(str(col))
    return out


def guess_target(frame: pd.DataFrame, candidates: list[str]) -> str | None:
    """First numeric column that does not look like an identifier."""
    for col in candidates:
        low = col.strip().lower()
        if not any(low == k or low.startswith(k + "_") or low.endswith("_" + k) for k in _ID_LIKE):
            if not low.startswith("unnamed"):
                return col
    return candidates[0] if candidates else None


def preview_frame(table: MoleculeTable, limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    """First rows with a ``status`` column saying whether each molecule is usable."""
    head = table.frame.head(limit).copy()
    status = ["ok" if e is None else f"✗ {e}" for e in table.errors[:limit]]
    head.insert(0, "status", status)
    head.insert(0, "#", np.arange(1, len(head) + 1))
    return _displayable(head)


def problem_frame(table: MoleculeTable, limit: int = PROBLEM_ROWS) -> pd.DataFrame:
    """Every row that cannot be used (up to ``limit``), with the reason."""
    bad = [i for i, e in enumerate(table.errors) if e is not None][:limit]
    return pd.DataFrame(
        {
            "#": [i + 1 for i in bad],
            table.smiles_col: [_short(table.frame[table.smiles_col].iloc[i]) for i in bad],
            "problem": [table.errors[i] for i in bad],
        }
    )


def _short(value: Any, width: int = 120) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _displayable(frame: pd.DataFrame) -> pd.DataFrame:
    """Long strings shortened and odd types stringified, so the table stays readable."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = [_short(v) for v in out[col]]
    return out


def apply_choices(
    session: SessionState,
    smiles_col: str | None,
    targets: list[str] | None,
    split_label: str,
    test_size: float = 0.2,
    valid_size: float = 0.1,
    seed: int = 0,
) -> str:
    """Re-validate for the chosen columns, split, store the split; returns a status line."""
    if session.table is None:
        raise UploadError("Load a dataset first.")
    targets = [t for t in (targets or []) if t]
    if not targets:
        raise UploadError("Choose at least one target column (a column of numbers to predict).")
    if smiles_col in targets:
        raise UploadError(f"{smiles_col!r} is the SMILES column; it cannot also be a target.")
    table = session.table
    if smiles_col and smiles_col != table.smiles_col:
        table = table_from_frame(table.frame, smiles_col, targets)
        session.set_table(table, session.source, session.provided_split)
    else:
        missing = [t for t in targets if t not in table.frame.columns]
        if missing:
            raise UploadError(f"Column(s) {missing} are not in the data.")
        table.targets = list(targets)
        session.clear_model()
    Y = table.target_matrix()
    empty = [t for j, t in enumerate(targets) if not np.isfinite(Y[:, j]).any()]
    if empty:
        raise UploadError(f"Target column(s) {empty} hold no numbers; choose numeric columns.")
    name = SPLITS.get(split_label, "random")
    params: dict[str, Any] = {}
    if name != "predefined":
        params = {"test_size": float(test_size), "valid_size": float(valid_size)}
    try:
        data = split_table(
            table, split=name, provided=session.provided_split, seed=int(seed), **params
        )
    except (ValueError, TypeError) as err:
        raise UploadError(f"Could not make a {split_label} split: {err}") from None
    if name == "predefined":
        data.split_name = "as provided"
    session.split = data
    session.needs_split = False
    labelled = int(np.isfinite(Y).any(axis=1).sum())
    leaks = data.notes.get("leaked_test_molecules", 0)
    text = (
        f"**Split: {data.split_name}** — {len(data.train):,} train · {len(data.valid):,} valid "
        f"· {len(data.test):,} test rows; {labelled:,} rows carry a label for "
        f"{', '.join(targets)}."
    )
    if leaks:
        text += f" **Warning:** {leaks} test molecules also occur in train/valid."
    return text


@dataclass
class DataTab:
    """Components other tabs listen to."""

    status: gr.Markdown
    split_status: gr.Markdown
    targets: gr.Dropdown
    loaded: gr.Button


def _after_load(session: SessionState, default_target: str | None) -> tuple[Any, ...]:
    table = session.table
    assert table is not None
    frame = table.frame
    split_col, _ = provided_split_labels(frame)
    exclude = (table.smiles_col, *([split_col] if split_col else []))
    numeric = numeric_columns(frame, exclude)
    target = default_target if default_target in numeric else guess_target(frame, numeric)
    has_provided = session.provided_split is not None
    choices = split_choices(has_provided)
    status = f"Loaded **{session.source}**.\n\n{validation_message(table)}"
    if split_col:
        status += (
            f"\n\nNote: column `{split_col}` holds train/valid/test labels; "
            "the 'as provided' split uses them."
        )
    return (
        status,
        gr.update(choices=[str(c) for c in frame.columns], value=table.smiles_col),
        gr.update(choices=numeric, value=[target] if target else []),
        gr.update(choices=choices, value=choices[0]),
        gr.update(value=preview_frame(table), visible=True),
        gr.update(value=problem_frame(table), visible=True),
    )


def load_bundled(name: str, session: SessionState) -> tuple[Any, ...]:
    """Load a bundled dataset into the session."""
    dataset = BUNDLED.get(name)
    if dataset is None:
        raise gr.Error(f"Unknown dataset {name!r}.")
    table, provided = dataset.load()
    session.set_table(table, dataset.name, provided)
    return _after_load(session, dataset.target)


def load_upload(path: str | None, session: SessionState) -> tuple[Any, ...]:
    """Validate and load an uploaded file.

    A rejected file leaves the previously loaded data in place and explains the problem in
    the status box (which stays visible, unlike a toast), so the UI remains usable.
    """
    try:
        frame = read_upload(path)
        table = table_from_frame(frame)
    except UploadError as err:
        keep = (gr.update(),) * 5
        return (f"**Upload rejected.** {err}", *keep)
    _, provided = provided_split_labels(table.frame)
    name = Path(str(path)).name if path else "upload"
    session.set_table(table, f"{name} (uploaded)", provided)
    return _after_load(session, None)


def build(state: gr.State) -> DataTab:
    """Lay out the Data tab and wire its events."""
    with gr.Tab("1 · Data", id="data"):
        gr.Markdown(
            "Pick a bundled dataset or upload your own table of molecules "
            f"({', '.join(ALLOWED_EXTENSIONS)}; up to {MAX_UPLOAD_MB} MB). Files are only "
            "parsed, never executed."
        )
        with gr.Row():
            with gr.Column(scale=1):
                dataset = gr.Dropdown(
                    choices=list(BUNDLED), value=DEFAULT_DATASET, label="Bundled dataset"
                )
                info = gr.Markdown(BUNDLED[DEFAULT_DATASET].description)
                load_btn = gr.Button("Load bundled dataset", variant="primary", elem_id="load-data")
                upload = gr.File(
                    label=f"…or upload a file (max {MAX_UPLOAD_MB} MB)",
                    file_types=list(ALLOWED_EXTENSIONS),
                    type="filepath",
                    elem_id="upload-data",
                )
            with gr.Column(scale=2):
                status = gr.Markdown("No data loaded yet.", elem_id="data-status")
                with gr.Row():
                    smiles_col = gr.Dropdown(label="SMILES column", choices=[], interactive=True)
                    targets = gr.Dropdown(
                        label="Target column(s)", choices=[], multiselect=True, interactive=True
                    )
                    split = gr.Dropdown(label="Split", choices=split_choices(False), value="random")
                with gr.Accordion("Split options", open=False):
                    with gr.Row():
                        test_size = gr.Slider(0.05, 0.5, value=0.2, step=0.05, label="Test share")
                        valid_size = gr.Slider(0.0, 0.3, value=0.1, step=0.05, label="Valid share")
                        seed = gr.Number(value=0, precision=0, label="Seed")
                apply_btn = gr.Button("Apply columns and split", elem_id="apply-split")
                split_status = gr.Markdown(elem_id="split-status")
        with gr.Tabs():
            with gr.Tab("Preview"):
                preview = gr.Dataframe(
                    interactive=False, max_height=420, visible=False, elem_id="preview"
                )
            with gr.Tab("Rows with problems"):
                problems = gr.Dataframe(
                    interactive=False, max_height=420, visible=False, elem_id="problems"
                )

    outputs = [status, smiles_col, targets, split, preview, problems]
    split_inputs = [state, smiles_col, targets, split, test_size, valid_size, seed]

    def apply(session: SessionState, smi: str, tgt: list[str], label: str, *rest: Any) -> str:
        try:
            return apply_choices(session, smi, tgt, label, *rest)
        except UploadError as err:
            return f"**Not applied.** {err}"

    def apply_after_load(session: SessionState, *args: Any) -> Any:
        """Split right after a successful load; after a rejected upload keep what is shown."""
        if not session.needs_split:
            return gr.update()
        return apply(session, *args)

    dataset.change(lambda n: BUNDLED[n].description if n in BUNDLED else "", dataset, info)
    load_btn.click(load_bundled, [dataset, state], outputs).then(
        apply_after_load, split_inputs, split_status
    )
    upload.upload(load_upload, [upload, state], outputs).then(
        apply_after_load, split_inputs, split_status
    )
    apply_btn.click(apply, split_inputs, split_status)
    return DataTab(status=status, split_status=split_status, targets=targets, loaded=load_btn)
