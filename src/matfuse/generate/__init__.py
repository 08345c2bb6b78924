"""Inverse design: objectives, search strategies and generation metrics.

from matfuse.generate import generate, draw_grid
table = generate({"terms": [{"property": "qed"}]}, strategy="graph-ga", budget=500)
draw_grid(table, "top.png")
"""

from matfuse.generate.api import STRATEGIES, draw_grid, generate, make_strategy
from matfuse.generate.objectives import Objective, SpecError, load_objective

__all__ = [
    "STRATEGIES",
    "Objective",
    "SpecError",
    "draw_grid",
    "generate",
    "load_objective",
    "make_strategy",
]
