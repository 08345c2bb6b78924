"""A separate test file: the loaded table becomes the training rows, the new file the test.

Many users have their data already split in two files (a benchmark's ``train.csv`` and
``test.csv``). Writing a split column into one table by hand is what FM4M's UI spares them,
and so does this: the rows of the test file are appended to the loaded table with a
``split`` column (``train`` for every loaded row, ``test`` for the new ones), and the
*as provided* split uses it, like any file that came with its own split column.

The test file must hold the same kind of inputs; its input column is found like the
loaded table's (and renamed to it), and it must carry the chosen target column(s), since
test rows without labels cannot be scored.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from matfuse.app.kinds import input_column, noun, table_kind
from matfuse.app.uploads import (
    READ_ERROR_COLUMN,
    UploadError,
    read_upload_table,
    table_from_frame,
)

logger = logging.getLogger(__name__)

__all__ = ["SPLIT_COLUMN", "with_test_file"]

SPLIT_COLUMN = "split"


def with_test_file(table: Any, path: str | None) -> tuple[Any, list[str], str]:
    """The loaded ``table`` plus the rows of the test file at ``path``.

    Returns the combined table, its split labels (``train``/``test`` per row) and a note
    for the status box. Raises :class:`UploadError` with a message for the user.
    """
    from matfuse.app.predict_tab import find_input_column  # predict_tab imports data_tab

    if table is None:
        raise UploadError("Load the training data first (bundled or uploaded), then its test file.")
    if not path:
        raise UploadError("Choose a test file.")
    kind = table_kind(table)
    uploaded = read_upload_table(path)
    test = uploaded.frame
    if uploaded.kind is not None and uploaded.kind != kind:
        raise UploadError(
            f"The loaded data holds {noun(kind)}; {Path(str(path)).name} holds "
            f"{noun(uploaded.kind)}."
        )
    col = input_column(table)
    try:
        _, test_col = find_input_column(test, kind, col if col in test.columns else None)
    except UploadError as err:
        raise UploadError(
            f"In the test file: {err} (or name it {col!r}, as in training)."
        ) from None
    targets = list(table.targets or [])
    missing = [t for t in targets if t not in test.columns]
    if missing:
        raise UploadError(
            f"The test file has no column {', '.join(map(repr, missing))}: test rows need the "
            "target values to be scored. Name the column as in the training data."
        )
    train = table.frame.drop(columns=[READ_ERROR_COLUMN], errors="ignore")
    train = train.drop(columns=[c for c in train.columns if str(c).startswith("_")])
    test = test.rename(columns={test_col: col}) if test_col != col else test
    test = test.drop(columns=[c for c in test.columns if str(c).startswith("_")])
    replaced = SPLIT_COLUMN in train.columns
    train = train.assign(**{SPLIT_COLUMN: "train"})
    test = test.assign(**{SPLIT_COLUMN: "test"})
    combined = pd.concat([train, test], ignore_index=True, sort=False)
    new = table_from_frame(combined, col, targets, kind)
    labels = ["train"] * len(train) + ["test"] * len(test)
    note = (
        f"Test file **{Path(str(path)).name}**: {len(test):,} test rows added after the "
        f"{len(train):,} training rows (column `{SPLIT_COLUMN}`; the *as provided* split "
        "uses it)."
    )
    if targets:
        note += f" Target: `{', '.join(targets)}` (kept from the training data)."
    if replaced:
        note += f" The training data's own `{SPLIT_COLUMN}` column was replaced."
    logger.info("test file %s: %d rows added to %d", path, len(test), len(train))
    return new, labels, note


def load_test_upload(path: str | None, session: Any) -> tuple[Any, ...]:
    """The Data tab's handler for the test-file upload: the same outputs as a load.

    A rejected test file leaves the loaded data as it was and says why in the status box.
    """
    from matfuse.app.data_tab import _after_load, _rejected
    from matfuse.app.sessions import SessionMemoryError

    try:
        table, labels, note = with_test_file(session.table, path)
    except UploadError as err:
        return _rejected(f"**Test file not added.** {err}")
    source = session.source.removesuffix(" (uploaded)")
    name = Path(str(path)).name
    target = (table.targets or [None])[0]
    try:
        session.set_table(table, f"{source} + {name} (test file)", labels)
    except SessionMemoryError as err:
        return _rejected(f"**Test file not added.** {err}")
    return _after_load(session, target, [note])
