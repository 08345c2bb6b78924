"""Fusion of several encoder blocks into one feature matrix."""

from matfuse.fusion.late import LateFusion, compute_blocks

__all__ = ["LateFusion", "compute_blocks"]
