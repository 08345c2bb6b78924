"""Result widgets the tabs share: a hidden picture gallery and a hidden read-only table.

Every tab shows its results the same way (nothing until there is something to show, then a
gallery of depictions or cell renderings and a table), so the look is set in one place.
"""

from __future__ import annotations

import gradio as gr

__all__ = ["hidden_gallery", "hidden_table"]


def hidden_gallery(label: str, elem_id: str, columns: int = 6, height: int = 300) -> gr.Gallery:
    """A hidden, read-only gallery of pictures shown whole (``contain``) in fixed columns."""
    return gr.Gallery(
        label=label,
        columns=columns,
        height=height,
        object_fit="contain",
        fit_columns=False,
        interactive=False,
        visible=False,
        elem_id=elem_id,
    )


def hidden_table(label: str, elem_id: str, max_height: int = 360) -> gr.Dataframe:
    """A hidden, read-only table that scrolls past ``max_height`` pixels."""
    return gr.Dataframe(
        label=label,
        interactive=False,
        max_height=max_height,
        visible=False,
        elem_id=elem_id,
    )
