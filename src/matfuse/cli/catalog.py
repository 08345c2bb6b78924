"""``encoders``, ``models``, ``kinds``, ``splitters``, ``strategies``, ``properties``: what the
registries hold (each listing reads its :class:`~matfuse.registry.Registry`, so a newly
registered entry shows up here with its description and tags)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
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
    table_rows = [
        {
            "name": r["name"],
            "modality": r["modality"],
            "dim": str(r["dim"]),
            "pretrained": "yes" if r["pretrained"] else "no",
            "description": r["description"],
        }
        for r in rows
    ]
    columns = ("name", "modality", "dim", "pretrained", "description")
    _print_rows("matfuse encoders", columns, table_rows)


def plain(text: str) -> str:
    """Docstring markup as plain prose: ``x`` and :meth:`x` become x (for tables and help)."""
    text = re.sub(r":[a-z:]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"`{1,2}([^`]+)`{1,2}", r"\1", text)


def _print_rows(title: str, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    """A rich table at the terminal width: the first column (names) is never cut, the
    others wrap between words, and descriptions are plain prose."""
    table = Table(title=title)
    names = [row[columns[0]] for row in rows]
    table.add_column(columns[0], no_wrap=True, min_width=max(map(len, names), default=4))
    for col in columns[1:]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(plain(row[c]) for c in columns))
    console.print(table)


def _tags(tags: frozenset[str], leave_out: Sequence[str] = ()) -> str:
    return ", ".join(sorted(tags - set(leave_out)))


AsJsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command()
def models(
    kind: Annotated[
        str | None, typer.Option(help="Only models that learn from this input kind.")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Only models for this task: regression|classification.")
    ] = None,
    as_json: AsJsonOption = False,
) -> None:
    """List the downstream models: tasks, native uncertainty, inputs and tags."""
    from matfuse.models.registry import MODELS, list_models

    with user_errors():
        if kind is not None:
            from matfuse.inputs import KINDS

            kind = KINDS.resolve(kind)
        specs = list_models(kind=kind, task=task)
    rows = [
        {
            "name": s.name,
            "tasks": ", ".join(s.tasks),
            "native uncertainty": ", ".join(s.native_uncertainty) or "-",
            "inputs": ", ".join(s.input_kinds) or "features",
            "tags": _tags(MODELS.entry(s.name).tags),
            "description": s.description,
        }
        for s in specs
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    columns = ("name", "tasks", "native uncertainty", "inputs", "description")
    _print_rows("matfuse downstream models", columns, rows)


@app.command()
def strategies(
    tag: Annotated[
        str | None, typer.Option(help="Only strategies with this tag (e.g. latent, classical).")
    ] = None,
    as_json: AsJsonOption = False,
) -> None:
    """List the generation strategies (`matfuse generate --strategy`) and what they need."""
    from matfuse.generate.strategies import STRATEGIES

    rows = [
        {"name": e.name, "tags": _tags(e.tags), "description": e.description}
        for e in STRATEGIES.entries(tag)
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    _print_rows("matfuse generation strategies", ("name", "tags", "description"), rows)


@app.command()
def properties(
    tag: Annotated[
        str | None, typer.Option(help="Only properties with this tag (e.g. cheap, count).")
    ] = None,
    as_json: AsJsonOption = False,
) -> None:
    """List what an objective term's `property:` may name: term kinds and RDKit properties."""
    from matfuse.generate.objectives import TERMS
    from matfuse.generate.properties import PROPERTIES

    rows = [
        {
            "name": e.name,
            "kind": "term",
            "keys": ", ".join(sorted(e.obj.keys)) or "-",
            "tags": _tags(e.tags),
            "description": e.description,
        }
        for e in TERMS.entries(tag)
    ] + [
        {
            "name": e.name,
            "kind": "property",
            "keys": "-",
            "tags": _tags(e.tags),
            "description": e.description,
        }
        for e in PROPERTIES.entries(tag)
        if e.name not in TERMS
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    columns = ("name", "kind", "keys", "tags", "description")
    _print_rows("matfuse objective terms (property: <name>)", columns, rows)


@app.command()
def kinds() -> None:
    """List the input kinds: how each is found in a table, its default encoders and splits."""
    from matfuse.evaluate.splitters import list_splitters
    from matfuse.inputs import KINDS

    columns = ("name", "description", "column names", "default encoders", "splitters")
    rows = [
        dict(
            zip(
                columns,
                (
                    entry.name,
                    entry.description,
                    ", ".join(entry.obj.column_names),
                    ", ".join(entry.obj.default_encoders),
                    ", ".join(list_splitters(entry.name)),
                ),
                strict=True,
            )
        )
        for entry in KINDS.entries()
    ]
    _print_rows("matfuse input kinds", columns, rows)


@app.command()
def splitters(
    kind: Annotated[str | None, typer.Option(help="Only those that apply to this kind.")] = None,
) -> None:
    """List the splitters, their options and the input kinds they need."""
    import inspect

    from matfuse.evaluate.splitters import SPLITTERS, list_splitters

    with user_errors():
        names = list_splitters(kind)
    rows = []
    for entry in SPLITTERS.entries():
        if entry.name not in names:
            continue
        params = inspect.signature(entry.obj.__init__).parameters
        options = ", ".join(
            f"{p}={v.default!r}" for p, v in params.items() if p != "self" and p != "labels"
        )
        rows.append(
            {
                "name": entry.name,
                "needs": entry.obj.needs or "any kind",
                "options (--split-param)": options,
                "description": entry.description,
            }
        )
    columns = ("name", "needs", "options (--split-param)", "description")
    _print_rows("matfuse splitters", columns, rows)
