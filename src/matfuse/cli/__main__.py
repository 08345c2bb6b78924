"""``python -m matfuse.cli``: the same as the ``matfuse`` command."""

from matfuse.cli import main

main()
