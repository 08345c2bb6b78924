"""``encoders``, ``models``, ``kinds``, ``splitters``: what the registries hold."""

from __future__ import annotations

import json
from typing import Annotated, TypedDict

import typer
from rich.table import Table

from matfuse.cli.common import app, console, user_errors


class _EncoderRow(TypedDict):
    name: str
    modality: str
    dim: int | None
    pretrained: bool
    description: str


@app.command("encoders")
def encoders_cmd(
    modality: Annotated[str | None, typer.Option(help="Only this modality.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List registered encoders: name, modality, dimension, pretrained."""
    from matfuse.encoders import list_encoders

    specs = list_encoders(modality)
    rows: list[_EncoderRow] = []
    for s in specs:
        try:
            dim: int | None = s.dim
            description = s.description
        except FileNotFoundError as exc:  # a foundation model whose weights are absent
            dim, description = None, f"unavailable: {exc}"
        rows.append(
            {
                "name": s.name,
                "modality": s.modality,
                "dim": dim,
                "pretrained": s.pretrained,
                "description": description,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="matfuse encoders")
    for col in ("name", "modality", "dim", "pretrained", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["modality"],
            str(r["dim"]),
            "yes" if r["pretrained"] else "no",
            r["description"],
        )
    console.print(table)


@app.command()
def models() -> None:
    """List the downstream models."""
    from matfuse.models import list_models

    table = Table(title="matfuse downstream models")
    for col in ("name", "description"):
        table.add_column(col)
    for spec in list_models():
        table.add_row(spec.name, spec.description)
    console.print(table)


@app.command()
def kinds() -> None:
    """List the input kinds: how each is found in a table, its default encoders and splits."""
    from matfuse.evaluate.splitters import list_splitters
    from matfuse.inputs import KINDS

    table = Table(title="matfuse input kinds")
    for col in ("name", "description", "column names", "default encoders", "splitters"):
        table.add_column(col)
    for entry in KINDS.entries():
        kind = entry.obj
        table.add_row(
            entry.name,
            entry.description,
            ", ".join(kind.column_names),
            ", ".join(kind.default_encoders),
            ", ".join(list_splitters(entry.name)),
        )
    console.print(table)


@app.command()
def splitters(
    kind: Annotated[str | None, typer.Option(help="Only those that apply to this kind.")] = None,
) -> None:
    """List the splitters, their options and the input kinds they need."""
    import inspect

    from matfuse.evaluate.splitters import SPLITTERS, list_splitters

    with user_errors():
        names = list_splitters(kind)
    table = Table(title="matfuse splitters")
    for col in ("name", "needs", "options", "description"):
        table.add_column(col)
    for entry in SPLITTERS.entries():
        if entry.name not in names:
            continue
        params = inspect.signature(entry.obj.__init__).parameters
        options = ", ".join(
            f"{p}={v.default!r}" for p, v in params.items() if p != "self" and p != "labels"
        )
        table.add_row(entry.name, entry.obj.needs or "any kind", options, entry.description)
    console.print(table)
