"""The ``matfuse`` command line: a thin layer over the library, one module per command group.

Every command reads inputs with :mod:`matfuse.inputs`, builds objects from the registries and
calls the same workflow functions as the Python API, so the CLI has no logic of its own.
"""

from matfuse.cli import (  # noqa: F401  (each module registers its commands)
    catalog,
    clm,
    crystal_diffusion,
    crystals,
    foundation,
    learn,
    materials,
    screen,
    serve,
    transfer,
)
from matfuse.cli.common import EXIT_INVALID_ROWS, app, user_errors
from matfuse.cli.generate import generate

app.command("generate")(generate)

__all__ = ["EXIT_INVALID_ROWS", "app", "main", "user_errors"]


def main() -> None:  # pragma: no cover
    app()
