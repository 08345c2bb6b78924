"""The Data tab: load a bundled dataset or an upload, inspect it, choose columns and the split.

Every input kind goes through the same steps: molecules (SMILES), compositions (formulas)
and crystal structures (CIF/POSCAR text in a table column, single structure files, or a zip
of them). The kind is detected by the library or chosen by the user; the split choices are
the splitters the library offers for that kind (scaffold and cluster for molecules; space
group, element and chemical system for materials). Structures get a *Structure view*:
formula, space group, lattice and a picture of the cell, plus a rotatable 3-D model.

The pure helpers (``apply_choices`` here; ``preview_frame``, ``structure_view`` ... in
:mod:`matfuse.app.data_views`) hold the logic and are unit-tested; ``build`` only wires
them to components. Loading a dataset immediately applies a sensible default split, so a
first-time user can go straight to *Learn*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.data_views import (
    NO_STRUCTURE,
    PREVIEW_COLUMNS,
    first_valid_row,
    preview_frame,
    problem_frame,
    structure_view,
)
from matfuse.app.datasets import BUNDLED, DEFAULT_DATASET, materials_available
from matfuse.app.kinds import (
    DEFAULT_KIND,
    KIND_CHOICES,
    SPLIT_LABELS,
    chosen_kind,
    element_choices,
    input_column,
    kind_view,
    noun,
    split_choices_for,
    split_label,
    splitter_names,
)
from matfuse.app.sessions import SessionMemoryError
from matfuse.app.state import SessionState, temp_root
from matfuse.app.test_file import load_test_upload
from matfuse.app.uploads import (
    ALLOWED_EXTENSIONS,
    MAX_UPLOAD_MB,
    UploadError,
    provided_split_labels,
    read_upload_table,
    table_from_frame,
    validation_message,
)
from matfuse.inputs.targets import (
    collinear_columns,
    numeric_columns,
    rank_target_candidates,
)
from matfuse.workflow import split_table

logger = logging.getLogger(__name__)

#: UI label → splitter name for molecules (from the library's splitter list).
SPLITS: dict[str, str] = {split_label(n): n for n in splitter_names(DEFAULT_KIND)}
#: Splitters whose size is decided by something else than ``test_size``.
_NO_TEST_SIZE = ("element",)


def split_choices(has_provided: bool, kind: str = DEFAULT_KIND) -> list[str]:
    """Labels of the splits for ``kind``; "as provided" only when the data came pre-split."""
    return [label for label, _ in split_choices_for(kind, has_provided)]


def split_name(value: str | None) -> str:
    """The splitter name for a dropdown value (a name, or a label of older callers)."""
    if not value:
        return "random"
    reverse = {label: name for name, label in SPLIT_LABELS.items()}
    return reverse.get(value, SPLITS.get(value, value))


def _split_params(
    name: str, test_size: float, valid_size: float, element: str | None, table: Any
) -> dict[str, Any]:
    if name == "predefined":
        return {}
    params: dict[str, Any] = {"valid_size": float(valid_size)}
    if name not in _NO_TEST_SIZE:
        params["test_size"] = float(test_size)
    if name == "element":
        params["element"] = element or element_choices(table.parsed, float(test_size))[1] or "O"
    return params


def _split(
    table: Any, name: str, provided: list[str] | None, seed: int, params: dict[str, Any]
) -> Any:
    """:func:`split_table`, dropping size options a splitter does not take.

    Not every splitter has ``test_size`` (a k-fold split, a held-out element); the library
    says so with a ``TypeError`` naming what it accepts, so the split is retried without
    the sizes rather than hand-listing each splitter's parameters here.
    """
    attempts = [params, {k: v for k, v in params.items() if k != "test_size"}]
    attempts.append({k: v for k, v in params.items() if k not in ("test_size", "valid_size")})
    error: Exception | None = None
    tried: list[dict[str, Any]] = []
    for options in attempts:
        if options in tried:
            continue
        tried.append(options)
        try:
            return split_table(table, split=name, provided=provided, seed=seed, **options)
        except TypeError as err:
            error = err
            logger.info("splitter %s refused %s: %s", name, sorted(options), err)
        except ValueError as err:
            raise UploadError(f"Could not make a {split_label(name)} split: {err}") from None
    raise UploadError(f"Could not make a {split_label(name)} split: {error}") from None


def apply_choices(
    session: SessionState,
    input_col: str | None,
    targets: list[str] | None,
    split_label_or_name: str,
    test_size: float = 0.2,
    valid_size: float = 0.1,
    seed: int = 0,
    element: str | None = None,
) -> str:
    """Re-validate for the chosen columns, split, store the split; returns a status line."""
    if session.table is None:
        raise UploadError("Load a dataset first.")
    targets = [t for t in (targets or []) if t]
    if not targets:
        raise UploadError("Choose at least one target column (a column of numbers to predict).")
    kind = session.kind
    if input_col in targets:
        raise UploadError(
            f"{input_col!r} is the {noun(kind, 1)} column; it cannot also be a target."
        )
    table = session.table
    if input_col and input_col != input_column(table):
        table = table_from_frame(table.frame, input_col, targets, kind)
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
    name = split_name(split_label_or_name)
    if name not in splitter_names(kind):
        raise UploadError(f"The {split_label(name)} split does not apply to {noun(kind)}.")
    params = _split_params(name, test_size, valid_size, element, table)
    data = _split(table, name, session.provided_split, int(seed), params)
    if name == "predefined":
        data.split_name = "as provided"
    session.split = data
    session.needs_split = False
    labelled = int(np.isfinite(Y).any(axis=1).sum())
    leaks = sum(int(v) for k, v in data.notes.items() if str(k).startswith("leaked_test_"))
    detail = f" (held-out element {params['element']})" if name == "element" else ""
    text = (
        f"**Split: {data.split_name}**{detail} — {len(data.train):,} train · "
        f"{len(data.valid):,} valid · {len(data.test):,} test rows; {labelled:,} rows carry "
        f"a label for {', '.join(targets)}."
    )
    if leaks:
        text += f" **Warning:** {leaks} test {noun(kind)} also occur in train/valid."
    return text


# ----------------------------------------------------------------------------- loading


@dataclass
class DataTab:
    """Components and events other tabs listen to."""

    status: gr.Markdown
    split_status: gr.Markdown
    targets: gr.Dropdown
    loaded: gr.Button
    #: events after which the table (and maybe its kind) changed: chain on their ``then``
    table_events: list[Any]


def target_note(
    frame: pd.DataFrame,
    target: str | None,
    ranked: list[Any],
    guessed: bool,
    exclude: tuple[str, ...] = (),
) -> str:
    """Say which target was guessed and why, and warn of columns that nearly repeat it.

    The same ranking and leak check as ``matfuse train`` (:mod:`matfuse.inputs.targets`),
    so the UI and the CLI pick the same column from the same file.
    """
    if target is None:
        return ""
    text = ""
    if guessed:
        reason = next((c.reason for c in ranked if c.name == target), "")
        text += f"\n\nTarget: `{target}` (guessed: {reason}; change it below)."
    leaks = collinear_columns(frame, target, exclude=exclude)
    if leaks:
        names = ", ".join(f"`{c.name}` (r = {c.r:+.3f})" for c in leaks[:3])
        text += (
            f"\n\n**Warning:** {names} almost repeats `{target}`: a possible label leak; "
            "leave it out of the inputs."
        )
    return text


def _after_load(
    session: SessionState, default_target: str | None, notes: list[str] | None = None
) -> tuple[Any, ...]:
    table = session.table
    assert table is not None
    kind = session.kind
    frame = table.frame
    split_col, _ = provided_split_labels(frame)
    exclude = (input_column(table), *([split_col] if split_col else []))
    numeric = numeric_columns(frame, exclude)
    ranked = rank_target_candidates(frame, exclude)
    target = default_target if default_target in numeric else (ranked[0].name if ranked else None)
    has_provided = session.provided_split is not None
    choices = split_choices_for(kind, has_provided)
    status = f"Loaded **{session.source}**.\n\n{validation_message(table)}"
    n_columns = len([c for c in frame.columns if not str(c).startswith("_")])
    if n_columns > PREVIEW_COLUMNS:
        status += f" The preview shows {PREVIEW_COLUMNS} of its {n_columns:,} columns."
    status += target_note(frame, target, ranked, guessed=target != default_target, exclude=exclude)
    for note in notes or []:
        status += f"\n\n{note}"
    if split_col:
        status += (
            f"\n\nNote: column `{split_col}` holds train/valid/test labels; "
            "the 'as provided' split uses them."
        )
    view = kind_view(kind)
    elements, element = element_choices(table.parsed) if view.has_elements else ([], None)
    first = (first_valid_row(table) or 1) if view.structure_view else None
    if first is not None:
        info, image, model = structure_view(session, first)
    else:
        info, image, model = NO_STRUCTURE.format(what=noun(kind)), None, None
    columns = [str(c) for c in frame.columns if not str(c).startswith("_")]
    return (
        status,
        gr.update(value=kind),
        gr.update(choices=columns, value=input_column(table)),
        gr.update(choices=numeric, value=[target] if target else []),
        gr.update(choices=choices, value=choices[0][1]),
        gr.update(choices=elements, value=element, visible=False),
        gr.update(value=preview_frame(table), visible=True),
        gr.update(value=problem_frame(table), visible=True),
        info,
        image,
        model,
        gr.update(value=first or 1),
    )


N_LOAD_OUTPUTS = 12


def load_bundled(name: str, session: SessionState) -> tuple[Any, ...]:
    """Load a bundled dataset into the session."""
    dataset = BUNDLED.get(name)
    if dataset is None:
        raise gr.Error(f"Unknown dataset {name!r}.")
    table, provided = dataset.load()
    try:
        session.set_table(table, dataset.name, provided)
    except SessionMemoryError as err:
        return _rejected(f"**Not loaded.** {err}")
    return _after_load(session, dataset.target)


def _rejected(message: str) -> tuple[Any, ...]:
    """Keep everything shown as it is and explain the problem in the status box."""
    return (message, *(gr.update(),) * (N_LOAD_OUTPUTS - 1))


def load_upload(
    path: str | None, session: SessionState, kind: str | None = None
) -> tuple[Any, ...]:
    """Validate and load an uploaded table, structure file or zip of structures.

    A rejected file leaves the previously loaded data in place and explains the problem in
    the status box (which stays visible, unlike a toast), so the UI remains usable.
    """
    try:
        uploaded = read_upload_table(path)
        wanted = uploaded.kind or chosen_kind(kind)
        table = table_from_frame(uploaded.frame, uploaded.input_col, None, wanted)
    except UploadError as err:
        return _rejected(f"**Upload rejected.** {err}")
    _, provided = provided_split_labels(table.frame)
    name = Path(str(path)).name if path else "upload"
    try:
        session.set_table(table, f"{name} (uploaded)", provided)
    except SessionMemoryError as err:
        return _rejected(f"**Upload not loaded.** {err}")
    return _after_load(session, None, uploaded.notes)


def change_kind(kind: str | None, session: SessionState) -> tuple[Any, ...]:
    """Re-read the loaded data as another input kind (the user overrode the detection)."""
    table = session.table
    if table is None:
        return _rejected("No data loaded yet.")
    wanted = chosen_kind(kind)
    if wanted == session.kind:
        return (gr.update(),) * N_LOAD_OUTPUTS
    frame = table.frame.drop(columns=[c for c in table.frame.columns if c == "_read_error"])
    try:
        new = table_from_frame(frame, None, list(table.targets), wanted)
    except UploadError as err:
        try:  # the current column may hold the other kind, e.g. formulas named "name"
            new = table_from_frame(frame, input_column(table), list(table.targets), wanted)
        except UploadError:
            return _rejected(f"**Input kind not changed.** {err}")
    session.set_table(new, session.source, session.provided_split)
    return _after_load(session, (table.targets or [None])[0])


def example_zip_path() -> str | None:
    """The downloadable example zip (made once per server process), if pymatgen is here."""
    if not materials_available():
        return None
    from matfuse.app.examples import example_zip

    return str(example_zip(temp_root() / "examples"))


def build(state: gr.State) -> DataTab:
    """Lay out the Data tab and wire its events."""
    with gr.Tab("1 · Data", id="data"):
        gr.Markdown(
            "Pick a bundled dataset or upload your own: a table of molecules (SMILES), "
            "compositions (formulas) or crystal structures (a CIF/POSCAR text column); a "
            "single CIF/POSCAR file; or a **zip of CIF/POSCAR files** (one row per file; a "
            "`.csv` inside with a column of file names adds labels). Accepted: "
            f"{', '.join(ALLOWED_EXTENSIONS)}, up to {MAX_UPLOAD_MB} MB. Files are only "
            "parsed, never executed."
        )
        with gr.Row():
            with gr.Column(scale=1):
                dataset = gr.Dropdown(
                    choices=[(d.label, d.name) for d in BUNDLED.values()],
                    value=DEFAULT_DATASET,
                    label="Bundled dataset",
                    elem_id="bundled-dataset",
                )
                info = gr.Markdown(BUNDLED[DEFAULT_DATASET].description)
                load_btn = gr.Button("Load bundled dataset", variant="primary", elem_id="load-data")
                upload = gr.File(
                    label=f"…or upload a file (max {MAX_UPLOAD_MB} MB)",
                    file_types=list(ALLOWED_EXTENSIONS),
                    type="filepath",
                    elem_id="upload-data",
                )
                test_upload = gr.File(
                    label="…then, optionally, a separate test file (same columns)",
                    file_types=list(ALLOWED_EXTENSIONS),
                    type="filepath",
                    elem_id="upload-test",
                )
                if materials_available():
                    gr.DownloadButton(
                        "Example structure zip (CIFs + labels.csv)",
                        value=example_zip_path,
                        size="sm",
                        elem_id="example-zip",
                    )
            with gr.Column(scale=2):
                status = gr.Markdown("No data loaded yet.", elem_id="data-status")
                with gr.Row():
                    kind = gr.Dropdown(
                        choices=KIND_CHOICES,
                        value="auto",
                        label="Input kind",
                        info="detected on load; change it to re-read the data",
                        elem_id="input-kind",
                    )
                    input_col = gr.Dropdown(
                        label="Input column (SMILES, formula or structure)",
                        choices=[],
                        interactive=True,
                        elem_id="input-col",
                    )
                    targets = gr.Dropdown(
                        label="Target column(s)", choices=[], multiselect=True, interactive=True
                    )
                with gr.Row():
                    split = gr.Dropdown(
                        label="Split",
                        choices=split_choices_for(DEFAULT_KIND, False),
                        value="random",
                        elem_id="split-choice",
                    )
                    element = gr.Dropdown(
                        label="Held-out element (test = every row containing it)",
                        choices=[],
                        visible=False,
                        elem_id="split-element",
                    )
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
            with gr.Tab("Structure view", elem_id="structure-view-tab") as s_tab:
                gr.Markdown(
                    "For crystal structures: pick a row (or click one in the preview) to see "
                    "its formula, space group, lattice and cell. Drag the 3-D model to rotate."
                )
                with gr.Row():
                    s_row = gr.Number(
                        value=1, precision=0, minimum=1, label="Row", elem_id="structure-row"
                    )
                    s_btn = gr.Button("Show structure", elem_id="show-structure")
                s_info = gr.Markdown(elem_id="structure-info")
                with gr.Row():
                    s_image = gr.Image(
                        type="filepath",
                        label="Unit cell",
                        interactive=False,
                        height=420,
                        elem_id="structure-image",
                    )
                    s_model = gr.Model3D(
                        label="Unit cell (3-D, drag to rotate)",
                        height=420,
                        interactive=False,
                        elem_id="structure-3d",
                    )

    outputs = [
        status,
        kind,
        input_col,
        targets,
        split,
        element,
        preview,
        problems,
        s_info,
        s_image,
        s_model,
        s_row,
    ]
    assert len(outputs) == N_LOAD_OUTPUTS
    split_inputs = [state, input_col, targets, split, test_size, valid_size, seed, element]

    def apply(session: SessionState, col: str, tgt: list[str], value: str, *rest: Any) -> str:
        try:
            return apply_choices(session, col, tgt, value, *rest)
        except UploadError as err:
            return f"**Not applied.** {err}"

    def apply_after_load(session: SessionState, *args: Any) -> Any:
        """Split right after a successful load; after a rejected upload keep what is shown."""
        if not session.needs_split:
            return gr.update()
        if not args[1]:  # nothing numeric to predict: say what to do, not "not applied"
            hint = kind_view(session.kind).no_target_hint
            return (
                "No target column yet: the data has no column of numbers to predict, so "
                f"there is nothing to split for training (you can still inspect it).{hint}"
            )
        return apply(session, *args)

    def show(session: SessionState, row: Any) -> tuple[Any, ...]:
        return structure_view(session, row)

    def select_row(session: SessionState, evt: gr.SelectData) -> Any:
        if not kind_view(session.kind).structure_view or not evt.index:
            return gr.skip()
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        number = int(index) + 1
        return (number, *structure_view(session, number))

    def split_changed(value: str) -> Any:
        return gr.update(visible=split_name(value) == "element")

    dataset.change(lambda n: BUNDLED[n].description if n in BUNDLED else "", dataset, info)
    load_event = load_btn.click(load_bundled, [dataset, state], outputs).then(
        apply_after_load, split_inputs, split_status
    )
    upload_event = upload.upload(load_upload, [upload, state, kind], outputs).then(
        apply_after_load, split_inputs, split_status
    )
    test_event = test_upload.upload(load_test_upload, [test_upload, state], outputs).then(
        apply_after_load, split_inputs, split_status
    )
    kind_event = kind.input(change_kind, [kind, state], outputs).then(
        apply_after_load, split_inputs, split_status
    )
    split.change(split_changed, split, element)
    apply_btn.click(apply, split_inputs, split_status)
    s_btn.click(show, [state, s_row], [s_info, s_image, s_model])
    # the 3-D viewer does not start while its tab is hidden (a cell loaded with the data
    # stays blank), so opening the tab clears it and shows the current row again
    s_tab.select(lambda: None, None, s_model).then(show, [state, s_row], [s_info, s_image, s_model])
    preview.select(select_row, [state], [s_row, s_info, s_image, s_model])
    return DataTab(
        status=status,
        split_status=split_status,
        targets=targets,
        loaded=load_btn,
        table_events=[load_event, upload_event, test_event, kind_event],
    )
