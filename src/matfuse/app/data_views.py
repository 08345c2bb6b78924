"""What the Data tab shows of a loaded table: the preview, the problem rows and the
structure view of one crystal.

Pure functions of a table (or of the session holding it), kept apart from the tab's layout
in :mod:`matfuse.app.data_tab` so they can be unit-tested without building a page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from matfuse.app.kinds import input_column, kind_view, noun, table_kind
from matfuse.app.state import SessionState

__all__ = [
    "NO_STRUCTURE",
    "PREVIEW_COLUMNS",
    "PREVIEW_ROWS",
    "PROBLEM_ROWS",
    "first_valid_row",
    "preview_frame",
    "problem_frame",
    "structure_headline",
    "structure_view",
]

PREVIEW_ROWS = 200
#: Columns shown in the preview: BACE's table has ~600 descriptor columns, and drawing
#: 200 x 600 cells froze the browser for minutes; the input and targets always stay.
PREVIEW_COLUMNS = 40
PROBLEM_ROWS = 1000
NO_STRUCTURE = "The structure view shows crystal structures; the loaded data holds {what}."


def structure_headline(value: Any) -> str:
    """A structure's text as one short cell: its ``data_`` line (or first line) and length.

    CIF writers often start with a comment (``# generated using pymatgen``), which says
    nothing about the structure, so comment lines are skipped.
    """
    if not isinstance(value, str) or not value.strip():
        return ""
    lines = [ln.strip() for ln in value.strip().splitlines()]
    named = next((ln for ln in lines if ln.startswith("data_")), None)
    first = named or next((ln for ln in lines if ln and not ln.startswith("#")), lines[0])
    return f"{_short(first, 40)} … ({len(lines)} lines)" if len(lines) > 1 else _short(first, 60)


def preview_frame(table: Any, limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    """First rows with a ``status`` column saying whether each input is usable.

    Kinds of long inputs (structures) get their parsed ``reduced formula`` next to the
    status, and their text column shows one line per input (the full text is in the
    structure view).
    """
    view = kind_view(table_kind(table))
    head = table.frame.head(limit).copy()
    head = head.drop(columns=[c for c in head.columns if str(c).startswith("_")])
    col = input_column(table)
    if len(head.columns) > PREVIEW_COLUMNS:
        first = [c for c in [col, *table.targets] if c in head.columns]
        rest = [c for c in head.columns if c not in first]
        head = head[first + rest[: PREVIEW_COLUMNS - len(first)]]
    if view.long_text and col in head:
        head[col] = [structure_headline(v) for v in head[col]]
    if view.long_text and "reduced formula" not in head:
        head.insert(0, "reduced formula", [f or "" for f in table.parsed.formulas[:limit]])
    status = ["ok" if e is None else f"✗ {e}" for e in table.errors[:limit]]
    head.insert(0, "status", status)
    head.insert(0, "#", np.arange(1, len(head) + 1))
    return _displayable(head)


def problem_frame(table: Any, limit: int = PROBLEM_ROWS) -> pd.DataFrame:
    """Every row that cannot be used (up to ``limit``), with the reason."""
    bad = [i for i, e in enumerate(table.errors) if e is not None][:limit]
    col = input_column(table)
    frame = table.frame
    label_col = next((c for c in ("file", "id", "name") if c in frame.columns and c != col), None)
    out: dict[str, Any] = {"#": [i + 1 for i in bad]}
    if label_col is not None:
        out[label_col] = [_short(frame[label_col].iloc[i]) for i in bad]
    show = structure_headline if kind_view(table_kind(table)).long_text else _short
    out[col] = [show(frame[col].iloc[i]) for i in bad]
    out["problem"] = [table.errors[i] for i in bad]
    return pd.DataFrame(out)


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


def first_valid_row(table: Any) -> int | None:
    valid = np.flatnonzero(np.asarray(table.parsed.valid))
    return int(valid[0]) + 1 if valid.size else None


def structure_view(session: SessionState, row: Any) -> tuple[str, str | None, str | None]:
    """Markdown, PNG path and GLB path for 1-based ``row`` of a structure table."""
    table = session.table
    if table is None:
        return "Load a dataset first.", None, None
    if not kind_view(session.kind).structure_view:
        return NO_STRUCTURE.format(what=noun(session.kind)), None, None
    try:
        number = int(row)
    except (TypeError, ValueError):
        return "Give a row number.", None, None
    if not 1 <= number <= len(table):
        return f"Row {number} does not exist: the table has {len(table):,} rows.", None, None
    i = number - 1
    structure = table.parsed.structures[i]
    label = _row_label(table, i)
    if structure is None:
        return f"### Row {number}{label}\n✗ {table.errors[i]}", None, None
    from matfuse.app.crystal_view import view_structure

    view = view_structure(structure, session.workdir / "views", f"row{number}")
    values = _target_text(table, i)
    return view.markdown(f"Row {number}{label}") + values, str(view.image), str(view.model3d)


def _row_label(table: Any, i: int) -> str:
    frame = table.frame
    for col in ("file", "id", "name", "material_id"):
        if col in frame.columns and isinstance(frame[col].iloc[i], str):
            return f" · {frame[col].iloc[i]}"
    return ""


def _target_text(table: Any, i: int) -> str:
    if not table.targets:
        return ""
    Y = table.target_matrix()
    parts = [f"{t} = {Y[i, j]:.4g}" for j, t in enumerate(table.targets) if np.isfinite(Y[i, j])]
    return ("\n\n" + " · ".join(parts)) if parts else ""
