"""The Predict tab: new inputs in, predictions with uncertainty (and pictures) out.

What goes in follows the trained model's input kind: SMILES or formulas pasted one per line
(optionally followed by a name), CIF/POSCAR text pasted whole, or an uploaded table, single
structure file or zip of structure files. Predictions come from
:meth:`PropertyModel.predict_table` of the session's model, so the CSV a user downloads has
the same columns as ``matfuse predict`` writes; a row that cannot be used keeps its input
and says why in the ``error`` column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.data_views import structure_headline
from matfuse.app.kinds import DEFAULT_KIND, kind_view, noun
from matfuse.app.plots import depiction_gallery
from matfuse.app.state import COMPUTE_SLOTS, SessionState
from matfuse.app.uploads import (
    ALLOWED_EXTENSIONS,
    FILE_COLUMN,
    MAX_UPLOAD_MB,
    READ_ERROR_COLUMN,
    UploadError,
    read_upload_table,
    refuse_paths,
)
from matfuse.app.widgets import hidden_gallery, hidden_table

logger = logging.getLogger(__name__)

#: Pasted lines accepted at once; larger batches belong in a file upload.
MAX_PASTED = 1000
#: Structures drawn under the results (each rendering costs ~0.1 s).
MAX_CELL_RENDERS = 12
EXAMPLE = kind_view(DEFAULT_KIND).paste_example
_NAME_COLUMNS = ("name", "id", "compound", "title", FILE_COLUMN)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parse_pasted(text: str | None, limit: int = MAX_PASTED) -> tuple[list[str], list[str]]:
    """Inputs and names from pasted lines: ``INPUT [name]``; blank and ``#`` lines skipped."""
    smiles: list[str] = []
    names: list[str] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        smiles.append(parts[0])
        names.append(parts[1].strip() if len(parts) > 1 else "")
    if len(smiles) > limit:
        raise UploadError(
            f"{len(smiles):,} lines pasted; paste up to {limit:,} or upload a file instead."
        )
    return smiles, names


def parse_pasted_for(kind: str, text: str | None) -> tuple[list[Any], list[str]]:
    """Pasted text for a model of ``kind``: one input as a whole (a structure's CIF) for
    kinds that say so, else one input per line."""
    view = kind_view(kind)
    if not view.whole_paste:
        return parse_pasted(text)
    text = (text or "").strip()
    if not text:
        return [], []
    if "\n" not in text:
        raise UploadError(
            f"Paste the whole {view.input_what} (several lines), or upload {view.noun} files."
        )
    return [text], [f"pasted {view.noun}"]


def inputs_from_file(path: str, kind: str = DEFAULT_KIND) -> tuple[list[Any], list[str]]:
    """Inputs (and names, if a name-like column exists) from an uploaded file."""
    inputs, names, _ = read_inputs(path, kind)
    return inputs, names


def find_input_column(frame: pd.DataFrame, kind: str, wanted: str | None) -> tuple[str, str]:
    """(kind, column) of the inputs of an uploaded table, as ``matfuse predict`` finds them;
    an :class:`UploadError` naming what to provide otherwise."""
    from matfuse.inputs import detect_input_kind

    try:
        return detect_input_kind(frame, kind, wanted)
    except (KeyError, ValueError) as err:
        text = str(err.args[0] if err.args else err)
        what = kind_view(kind).input_what
        raise UploadError(text.replace("(name it explicitly)", f"(a column of {what})")) from None


def read_inputs(
    path: str, kind: str = DEFAULT_KIND
) -> tuple[list[Any], list[str], list[str | None]]:
    """Inputs, names and per-row read errors from an uploaded file.

    Structure files and zips give one structure per file, named by the file (a file that
    could not be read keeps its row, with the reason); tables are searched for the column
    of the model's kind, as ``matfuse predict`` does.
    """
    uploaded = read_upload_table(path)
    frame = uploaded.frame
    if uploaded.kind is not None and uploaded.kind != kind:
        raise UploadError(
            f"This model predicts from {noun(kind)}; {Path(str(path)).name} holds "
            f"{noun(uploaded.kind)}."
        )
    found, col = find_input_column(frame, kind, uploaded.input_col)
    raw = kind_view(found).reads_files  # values may be parsed objects, or paths to refuse
    if raw and uploaded.kind is None:
        frame = refuse_paths(frame, col)
    lowered = {str(c).lower(): c for c in frame.columns}
    name_col = next((lowered[n] for n in _NAME_COLUMNS if n in lowered and lowered[n] != col), None)
    inputs = [None if _missing(v) else (v if raw else str(v)) for v in frame[col]]
    errors: list[str | None] = [None] * len(inputs)
    if READ_ERROR_COLUMN in frame.columns:
        errors = [e if isinstance(e, str) and e else None for e in frame[READ_ERROR_COLUMN]]
    names = [""] * len(inputs)
    if name_col is not None:
        names = ["" if _missing(v) else str(v) for v in frame[name_col]]
    return inputs, names, errors


def predict_uploaded_table(
    session: SessionState, path: str, kind: str
) -> tuple[pd.DataFrame, list[Any]] | None:
    """Predictions for an uploaded *table* with every one of its columns kept, through the
    same :func:`~matfuse.workflow.stream.predict_chunk` as ``matfuse predict``; ``None``
    for structure files and zips (one structure per file: :func:`read_inputs`).

    Returns the table (the user's columns, then ours, ``error`` last) and the inputs for
    the pictures.
    """
    from matfuse.workflow.stream import predict_chunk

    if session.model is None:
        raise UploadError("Train a model in the Learn tab first.")
    uploaded = read_upload_table(path)
    if uploaded.kind is not None:
        return None
    frame = uploaded.frame
    found, col = find_input_column(frame, kind, uploaded.input_col)
    if kind_view(found).reads_files:  # a cell naming a server file is refused, not read
        frame = refuse_paths(frame, col)
    reasons = list(frame[READ_ERROR_COLUMN]) if READ_ERROR_COLUMN in frame else []
    result = predict_chunk(session.model, frame, {col: found})
    for i, reason in enumerate(reasons):
        if isinstance(reason, str) and reason:
            result.loc[i, "error"] = reason
    return result, list(frame[col])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Defuse text cells that a spreadsheet would run as a formula (CSV injection)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = [
                "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
                for v in out[col]
            ]
    return out


def model_kind(session: SessionState) -> str:
    """The input kind the session's model reads (molecules for older models)."""
    return str(getattr(session.model, "input_type", DEFAULT_KIND) or DEFAULT_KIND)


def predict_frame(session: SessionState, inputs: list[Any], names: list[str]) -> pd.DataFrame:
    """``predict_table`` of the session's model with a ``name`` column in front."""
    if session.model is None:
        raise UploadError("Train a model in the Learn tab first.")
    kind = model_kind(session)
    if not inputs:
        raise UploadError(f"Paste at least {kind_view(kind).paste_one} or upload a file.")
    # text from the browser is never a server-side file name
    table = session.model.predict_table(session.model.parse(inputs, allow_paths=False))
    table.insert(0, "name", names)
    return table


def name_column(columns: Any, exclude: Any = None) -> Any:
    """The column that names the rows (``name``, ``id``, ``Compound ID``...), if any."""
    cols = [c for c in columns if c != exclude]
    lowered = {str(c).strip().lower(): c for c in cols}
    exact = next((lowered[n] for n in _NAME_COLUMNS if n in lowered), None)
    if exact is not None:
        return exact
    suffixed = ("name", " id", "_id")
    return next((c for c in cols if str(c).strip().lower().endswith(suffixed)), None)


def captions(table: pd.DataFrame, targets: list[str]) -> list[str]:
    """Gallery captions: name, then prediction ± std for the first target."""
    target = targets[0]
    name_col = name_column(table.columns)
    out = []
    for i, (_, row) in enumerate(table.iterrows()):
        name = row[name_col] if name_col is not None else None
        label = str(name) if isinstance(name, str) and name else f"#{i + 1}"
        pred = row.get(f"pred_{target}")
        if pred is not None and np.isfinite(pred):
            label += f" · {target} {pred:.3g}"
            std = row.get(f"std_{target}")
            if std is not None and np.isfinite(std):
                label += f" ± {std:.2g}"
        out.append(label)
    return out


def write_results(table: pd.DataFrame, directory: Path) -> Path:
    """The downloadable CSV (full precision, formula-safe)."""
    path = directory / "matfuse-predictions.csv"
    csv_safe(table).to_csv(path, index=False)
    return path


def shown_frame(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The results as displayed: rounded numbers; a structure's text shortened to a line."""
    shown = table.copy()
    if kind_view(kind).long_text:
        for col in shown.columns:  # the input column, whatever the user named it
            if shown[col].map(lambda v: isinstance(v, str) and "\n" in v.strip()).any():
                shown[col] = [structure_headline(v) for v in shown[col]]
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].round(3)
    return shown


def result_gallery(
    session: SessionState, inputs: list[Any], table: pd.DataFrame
) -> list[tuple[Any, str]]:
    """Depictions of molecules or renderings of structures, captioned with the prediction."""
    picture = kind_view(model_kind(session)).picture
    labels = captions(table, session.model.target_names_)
    if picture == "depiction":
        col = next(c for c in ("canonical_smiles_matfuse", "canonical_smiles") if c in table)
        return depiction_gallery(list(table[col]), labels)
    if picture != "cell":
        return []
    from matfuse.app.crystal_view import render_structure

    parsed = session.model.parse(inputs, allow_paths=False)
    items: list[tuple[Any, str]] = []
    directory = session.workdir / "predict-cells"
    for i, (structure, label) in enumerate(zip(parsed.structures, labels, strict=True)):
        if len(items) >= MAX_CELL_RENDERS:
            break
        if structure is not None:
            items.append((str(render_structure(structure, directory / f"{i + 1}.png")), label))
    return items


def model_note(session: SessionState) -> str:
    if session.model is None:
        return "No model yet: train one in the **Learn** tab."
    pm = session.model
    kind = model_kind(session)
    return (
        f"Model: **{' + '.join(pm.encoders)} → {pm.model}**, predicting "
        f"**{', '.join(pm.target_names_)}** ({', '.join(pm.task_types_)}) from "
        f"**{noun(kind)}**, trained on {pm.n_train_:,} {noun(kind)}."
    )


def input_labels(kind: str) -> tuple[str, str]:
    """The text box's label and placeholder for a model of ``kind``."""
    view = kind_view(kind)
    return view.paste_label, view.paste_example


@dataclass
class PredictTab:
    """Components refreshed after training."""

    note: gr.Markdown
    download_model: gr.DownloadButton
    text: gr.Textbox

    @property
    def refreshed(self) -> list[Any]:
        """The outputs of :func:`after_training`."""
        return [self.note, self.download_model, self.text]


def build(state: gr.State) -> PredictTab:
    """Lay out the Predict tab and wire its events."""
    label, placeholder = input_labels(DEFAULT_KIND)
    with gr.Tab("4 · Predict", id="predict"):
        note = gr.Markdown(model_note(SessionState()), elem_id="predict-model-note")
        with gr.Row():
            text = gr.Textbox(
                label=label,
                lines=6,
                placeholder=placeholder,
                elem_id="predict-smiles",
            )
            upload = gr.File(
                label=(
                    f"…or upload a file (max {MAX_UPLOAD_MB} MB): a table (its SMILES, formula "
                    "or structure column is found), CIF/POSCAR files or a zip of them"
                ),
                file_types=list(ALLOWED_EXTENSIONS),
                type="filepath",
                elem_id="predict-upload",
            )
        predict_btn = gr.Button("Predict", variant="primary", elem_id="predict-button")
        status = gr.Markdown(elem_id="predict-status")
        table = hidden_table(
            "Predictions (std = predictive spread; lower/upper = interval)", "predict-table"
        )
        gallery = hidden_gallery("Pictures", "predict-gallery")
        with gr.Row():
            download_csv = gr.DownloadButton(
                "Download results (.csv)", visible=False, elem_id="download-csv"
            )
            download_model = gr.DownloadButton(
                "Download trained model (.zip)", visible=False, elem_id="download-model"
            )

    def predict(session: SessionState, pasted: str, path: str | None) -> tuple[Any, Any, Any, Any]:
        kind = model_kind(session) if session.model is not None else DEFAULT_KIND
        try:
            errors: list[str | None] = []
            from_table = predict_uploaded_table(session, path, kind) if path else None
            if from_table is not None:
                result, inputs = from_table
            else:
                if path:
                    inputs, names, errors = read_inputs(path, kind)
                else:
                    inputs, names = parse_pasted_for(kind, pasted)
                result = predict_frame(session, inputs, names)
        except UploadError as err:
            return f"**Error:** {err}", gr.update(), gr.update(), gr.update()
        for i, reason in enumerate(errors):  # the reader's reason beats "empty input"
            if reason:
                result.loc[i, "error"] = reason
        n_bad = int(result["error"].notna().sum())
        csv_path = write_results(result, session.workdir)
        message = f"{len(result):,} {noun(kind, len(result))} predicted"
        if n_bad:
            message += f"; {n_bad} could not be used (see the `error` column)"
        items = result_gallery(session, inputs, result)
        shown = shown_frame(result, kind)
        return (
            message + ".",
            gr.Dataframe(shown, visible=True),
            gr.Gallery(items, visible=bool(items)),
            gr.DownloadButton(value=str(csv_path), visible=True),
        )

    predict_btn.click(
        predict,
        [state, text, upload],
        [status, table, gallery, download_csv],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
    )
    return PredictTab(note=note, download_model=download_model, text=text)


def after_training(session: SessionState) -> tuple[Any, ...]:
    """Refresh the model note, the model download and the input box once training finished."""
    zip_path = session.model_zip
    button = gr.DownloadButton(
        value=str(zip_path) if zip_path else None, visible=zip_path is not None
    )
    label, placeholder = input_labels(model_kind(session))
    return model_note(session), button, gr.update(label=label, placeholder=placeholder)
