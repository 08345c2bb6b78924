"""Transitional aliases of :mod:`matfuse.workflow` (removed once every caller has moved)."""

from typing import Any

from matfuse.workflow import (  # noqa: F401
    FUSED,
    Comparison,
    RepresentationResult,
    SplitData,
    encode_all,
    fit_and_report,
    load_dataset,
    split_table,
)
from matfuse.workflow import compare_representations as _compare
from matfuse.workflow import comparison_frame as _frame


def compare_representations(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return _compare(*args, **kwargs).to_dict()


def _as_comparison(result: Any) -> Comparison:
    if isinstance(result, Comparison):
        return result
    reps = {k: RepresentationResult(**v) for k, v in result["representations"].items()}
    return Comparison(**{**result, "representations": reps})


def comparison_frame(result: Any, metric: str | None = None) -> Any:
    return _frame(_as_comparison(result), metric)


def headline(result: Any, metric: str | None = None) -> dict[str, float]:
    return _as_comparison(result).headline(metric)
