"""Registers the input kinds that ship with matfuse (imported by the kinds registry)."""

from matfuse.inputs import compositions, molecules, structures  # noqa: F401
