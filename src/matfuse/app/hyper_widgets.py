"""Hyperparameter fields generated from the model registry, writing the JSON box.

A new user should not have to type JSON to try 300 trees. For the chosen model the Learn tab
shows one field per key hyperparameter (:data:`~matfuse.app.training.KEY_PARAMS`), labelled
with its name and filled with the registry's default for the loaded task
(:func:`~matfuse.app.training.default_hyperparameters`). Editing a field rewrites the JSON
box, which stays the single thing training reads; experts can still edit the JSON directly.

Gradio cannot add components after the page is built, so there are :data:`N_FIELDS` fixed
text fields, shown or hidden per model.
"""

from __future__ import annotations

import json
from typing import Any

from matfuse.app.training import KEY_PARAMS, default_hyperparameters
from matfuse.registry import parse_value

__all__ = ["N_FIELDS", "field_specs", "json_with_field"]

N_FIELDS = max(len(names) for names in KEY_PARAMS.values())
#: what a field shows for a default of ``None`` (e.g. unlimited ``max_depth``)
NONE_TEXT = "none"


def _shown(value: Any) -> str:
    return NONE_TEXT if value is None else str(value)


def field_specs(
    model: str, task: str = "regression", n_samples: int | None = None
) -> list[tuple[str, str] | None]:
    """(name, default text) per field for ``model``; ``None`` for a field to hide."""
    defaults = default_hyperparameters(model, task, n_samples)
    specs: list[tuple[str, str] | None] = [(k, _shown(v)) for k, v in defaults.items()]
    return (specs + [None] * N_FIELDS)[:N_FIELDS]


def field_value(text: str | None) -> Any:
    """A field's text as a JSON value: ``"300"`` → 300, ``"none"`` → null, ``"sqrt"`` stays."""
    text = (text or "").strip()
    if not text or text.lower() in (NONE_TEXT, "null"):
        return None
    return parse_value(text)


def json_with_field(current: str | None, name: str | None, text: str | None) -> str:
    """The JSON box after field ``name`` was set to ``text`` (other keys kept as typed).

    A JSON box that does not parse is replaced by the field's value alone, so a field edit
    always leaves valid JSON behind.
    """
    try:
        given = json.loads(current or "{}")
    except json.JSONDecodeError:
        given = {}
    if not isinstance(given, dict):
        given = {}
    if name:
        given[name] = field_value(text)
    return json.dumps(given, indent=1)
