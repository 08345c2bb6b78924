"""The Predict tab: new molecules in, predictions with uncertainty and depictions out.

Predictions come from :meth:`PropertyModel.predict_table` of the session's trained model, so
the CSV a user downloads has the same columns as ``matfuse predict`` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.plots import depiction_gallery
from matfuse.app.state import COMPUTE_SLOTS, SessionState
from matfuse.app.uploads import ALLOWED_EXTENSIONS, MAX_UPLOAD_MB, UploadError, read_upload
from matfuse.io.readers import find_smiles_column

#: Pasted lines accepted at once; larger batches belong in a file upload.
MAX_PASTED = 1000
EXAMPLE = "CC(=O)Nc1ccc(O)cc1 paracetamol\nCn1cnc2c1c(=O)n(C)c(=O)n2C caffeine\nC1CC( broken"
_NAME_COLUMNS = ("name", "id", "compound", "title")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parse_pasted(text: str | None, limit: int = MAX_PASTED) -> tuple[list[str], list[str]]:
    """SMILES and names from pasted lines: ``SMILES [name]``; blank and ``#`` lines skipped."""
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


def inputs_from_file(path: str) -> tuple[list[str], list[str]]:
    """SMILES (and names, if a name-like column exists) from an uploaded file."""
    frame = read_upload(path)
    try:
        col = find_smiles_column(frame)
    except ValueError as err:
        raise UploadError(str(err).replace("(--smiles-col)", "(name it 'smiles')")) from None
    lowered = {str(c).lower(): c for c in frame.columns}
    name_col = next((lowered[n] for n in _NAME_COLUMNS if n in lowered and lowered[n] != col), None)
    smiles = ["" if pd.isna(v) else str(v) for v in frame[col]]
    if name_col is None:
        return smiles, [""] * len(smiles)
    return smiles, ["" if pd.isna(v) else str(v) for v in frame[name_col]]


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


def predict_frame(session: SessionState, smiles: list[str], names: list[str]) -> pd.DataFrame:
    """``predict_table`` of the session's model with a ``name`` column in front."""
    if session.model is None:
        raise UploadError("Train a model in the Learn tab first.")
    if not smiles:
        raise UploadError("Paste at least one SMILES (one per line) or upload a file.")
    table = session.model.predict_table(smiles)
    table.insert(0, "name", names)
    return table


def captions(table: pd.DataFrame, targets: list[str]) -> list[str]:
    """Gallery captions: name, then prediction ± std for the first target."""
    target = targets[0]
    out = []
    for i, (_, row) in enumerate(table.iterrows()):
        label = row["name"] or f"#{i + 1}"
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


def model_note(session: SessionState) -> str:
    if session.model is None:
        return "No model yet: train one in the **Learn** tab."
    pm = session.model
    return (
        f"Model: **{' + '.join(pm.encoders)} → {pm.model}**, predicting "
        f"**{', '.join(pm.target_names_)}** ({', '.join(pm.task_types_)}), "
        f"trained on {pm.n_train_:,} molecules."
    )


@dataclass
class PredictTab:
    """Components refreshed after training."""

    note: gr.Markdown
    download_model: gr.DownloadButton


def build(state: gr.State) -> PredictTab:
    """Lay out the Predict tab and wire its events."""
    with gr.Tab("4 · Predict", id="predict"):
        note = gr.Markdown(model_note(SessionState()), elem_id="predict-model-note")
        with gr.Row():
            text = gr.Textbox(
                label="SMILES, one per line (optionally followed by a name)",
                lines=6,
                placeholder=EXAMPLE,
                elem_id="predict-smiles",
            )
            upload = gr.File(
                label=f"…or upload a file (max {MAX_UPLOAD_MB} MB; a SMILES column is found)",
                file_types=list(ALLOWED_EXTENSIONS),
                type="filepath",
                elem_id="predict-upload",
            )
        predict_btn = gr.Button("Predict", variant="primary", elem_id="predict-button")
        status = gr.Markdown(elem_id="predict-status")
        table = gr.Dataframe(
            label="Predictions (std = predictive spread; lower/upper = interval)",
            interactive=False,
            max_height=360,
            visible=False,
            elem_id="predict-table",
        )
        gallery = gr.Gallery(
            label="Depictions",
            columns=6,
            height=300,
            object_fit="contain",
            fit_columns=False,
            interactive=False,
            visible=False,
            elem_id="predict-gallery",
        )
        with gr.Row():
            download_csv = gr.DownloadButton(
                "Download results (.csv)", visible=False, elem_id="download-csv"
            )
            download_model = gr.DownloadButton(
                "Download trained model (.zip)", visible=False, elem_id="download-model"
            )

    def predict(session: SessionState, pasted: str, path: str | None) -> tuple[Any, Any, Any, Any]:
        try:
            smiles, names = inputs_from_file(path) if path else parse_pasted(pasted)
            result = predict_frame(session, smiles, names)
        except UploadError as err:
            return f"**Error:** {err}", gr.update(), gr.update(), gr.update()
        n_bad = int(result["error"].notna().sum())
        shown = result.copy()
        for col in shown.columns:
            if pd.api.types.is_float_dtype(shown[col]):
                shown[col] = shown[col].round(3)
        csv_path = write_results(result, session.workdir)
        message = f"{len(result):,} molecules predicted"
        if n_bad:
            message += f"; {n_bad} could not be used (see the `error` column)"
        gallery_items = depiction_gallery(
            list(result["canonical_smiles"]), captions(result, session.model.target_names_)
        )
        return (
            message + ".",
            gr.Dataframe(shown.drop(columns=["input"]), visible=True),
            gr.Gallery(gallery_items, visible=bool(gallery_items)),
            gr.DownloadButton(value=str(csv_path), visible=True),
        )

    predict_btn.click(
        predict,
        [state, text, upload],
        [status, table, gallery, download_csv],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
    )
    return PredictTab(note=note, download_model=download_model)


def after_training(session: SessionState) -> tuple[str, Any]:
    """Refresh the model note and the model download once training finished."""
    zip_path = session.model_zip
    button = gr.DownloadButton(
        value=str(zip_path) if zip_path else None, visible=zip_path is not None
    )
    return model_note(session), button
