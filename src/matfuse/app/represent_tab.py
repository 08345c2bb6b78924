"""The Represent tab: choose encoders from the registry and look at the fused latent space.

Encoders are listed from :func:`matfuse.encoders.list_encoders` at build time, grouped by
modality, so a newly registered encoder (a foundation model, a materials representation)
appears here without touching the UI. Which groups are shown, and which encoders are ticked,
follows the loaded data's input kind: the modalities that can read it
(``matfuse.inputs.compatible_modalities``) and its default encoder set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from matfuse.app.curves import target_units
from matfuse.app.kinds import (
    DEFAULT_KIND,
    compatible_modalities,
    default_encoders_for,
    display_keys,
    kind_view,
    noun,
)
from matfuse.app.map_colours import target_colours
from matfuse.app.plots import (
    MAX_DEPICTIONS,
    depiction_gallery,
    latent_map,
    map_frame,
    projection_methods,
    rows_in_range,
    rows_near,
)
from matfuse.app.state import COMPUTE_SLOTS, SessionState
from matfuse.app.widgets import hidden_gallery, hidden_table

logger = logging.getLogger(__name__)

#: the map's own columns (the rest is the colouring target); item/key are the generic view's
MAP_COLUMNS = ("x", "y", "row", "molecule", "smiles", "material", "formula", "item", "key")
#: Structures drawn for a selection on the map (each is a small rendering, not free).
MAX_CELL_RENDERS = 12
#: A click shows the clicked molecule and this many of its neighbours on the map.
CLICK_NEIGHBOURS = 11
#: A brush narrower than this share of the map's width is a click, not a range selection.
MIN_BRUSH_SHARE = 1e-3

# Gradio's native ScatterPlot only reports x-interval brushes (``select`` with
# ``index=[x0, x1]``); a click on a single point reports nothing. The plot is therefore
# wrapped in an HTML block whose script turns a click on a point into a ``select`` event
# carrying that point's dataset row. Vega's SVG renderer keeps each mark's scenegraph item
# (and through it the data row) on the DOM node as ``__data__``.
MAP_CLICK_JS = """
element.addEventListener('click', (event) => {
  const item = event.target && event.target.__data__;
  const datum = item && item.datum;
  if (!datum || typeof datum.row !== 'number') return;
  const value = datum.smiles ?? datum.formula ?? null;
  trigger('select', {index: datum.row, value: value, selected: true});
});
"""


def _describe(spec: Any) -> dict[str, Any]:
    """One catalogue row; an encoder that cannot be built (e.g. pretrained weights not
    downloaded or trained yet) is listed as unavailable with the reason, not hidden."""
    row: dict[str, Any] = {"name": spec.name, "description": spec.description, "available": "yes"}
    for key in ("modality", "dim", "pretrained"):
        try:
            row[key] = getattr(spec, key)
        except Exception as err:  # noqa: BLE001 - any failure means "cannot be used here"
            row[key] = None
            reason = str(err).split(";")[0].strip() or type(err).__name__
            row["available"] = f"no: {reason}"
    if row["pretrained"] is not None:
        row["pretrained"] = "yes" if row["pretrained"] else "no"
    return row


@lru_cache(maxsize=1)
def encoder_catalogue() -> pd.DataFrame:
    """name, modality, dim, pretrained, availability and description of every encoder.

    Cached because building each encoder to read its dimension is not free (ChemNet).
    """
    from matfuse.encoders import list_encoders

    columns = ["name", "modality", "dim", "pretrained", "available", "description"]
    frame = pd.DataFrame([_describe(s) for s in list_encoders()], columns=columns)
    frame["dim"] = frame["dim"].astype("Int64")
    return frame


def encoder_groups() -> dict[str, list[tuple[str, str]]]:
    """Checkbox choices per modality: ("ecfp · 2048-d", "ecfp"), pretrained ones flagged."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for row in encoder_catalogue().itertuples():
        if row.available != "yes":
            continue
        flag = " · pretrained" if row.pretrained == "yes" else ""
        label = f"{row.name} · {int(row.dim)}-d{flag}"
        groups.setdefault(str(row.modality), []).append((label, str(row.name)))
    return groups


def unavailable_note() -> str:
    """Which registered encoders cannot be chosen, and why (shown under the checkboxes)."""
    cat = encoder_catalogue()
    missing = cat[cat["available"] != "yes"]
    if missing.empty:
        return ""
    names = ", ".join(f"`{n}`" for n in missing["name"])
    return (
        f"Registered but not usable here: {names} (e.g. pretrained weights not available; "
        "see *All registered encoders*)."
    )


def chosen_encoders(*groups: Sequence[str] | None) -> list[str]:
    """Union of the per-modality checkbox values, in registry order."""
    picked = {name for group in groups for name in (group or [])}
    return [n for n in encoder_catalogue()["name"] if n in picked]


def map_for_session(
    session: SessionState, encoders: list[str], method: str, on_encoder: Any = None
) -> tuple[pd.DataFrame, str, str | None]:
    """The scatter table of the fused latent map, a note, and the colouring target."""
    if session.table is None:
        raise ValueError("Load a dataset first (Data tab).")
    if not encoders:
        raise ValueError("Choose at least one encoder.")
    blocks = session.get_blocks(encoders, on_encoder)
    coords, rows, note = latent_map(blocks, encoders, method)
    table = session.table
    target = table.targets[0] if table.targets else None
    values = table.target_matrix()[:, 0] if target else None
    item, key = map_columns(session.kind)
    keys = display_keys(table.parsed)
    frame = map_frame(coords, rows, keys, values, target or "", item=item, key=key)
    return frame, note, target


def map_columns(kind: str) -> tuple[str, str]:
    """The map's label and identity columns: (molecule, smiles) or (material, formula)."""
    view = kind_view(kind)
    return view.map_item, view.map_key


def selection(
    frame: pd.DataFrame | None, index: Any, kind: str = DEFAULT_KIND
) -> tuple[pd.DataFrame, str] | None:
    """The map points a select event refers to, and a gallery label saying what they are.

    ``index`` is ``[x0, x1]`` for a brushed range (the points inside, nearest its centre
    first) or one dataset row number for a clicked point (that point, then its nearest
    neighbours on the map). ``None`` means "ignore this event": no map yet, or a brush so
    narrow that it was really a click (the click itself arrives as its own event).
    """
    if frame is None or frame.empty or index is None:
        return None
    if isinstance(index, list | tuple):
        lo, hi = sorted(float(v) for v in index[:2])
        width = float(frame["x"].max() - frame["x"].min()) or 1.0
        if hi - lo < MIN_BRUSH_SHARE * width:
            return None
        chosen = rows_in_range(frame, [lo, hi], MAX_DEPICTIONS)
        inside = int(frame["x"].between(lo, hi).sum())
        label = f"{inside:,} {noun(kind)} with component 1 in [{lo:.3g}, {hi:.3g}]"
        if inside > len(chosen):
            label += f" (the {len(chosen)} nearest the middle of the range)"
        return chosen, label
    chosen = rows_near(frame, int(index), CLICK_NEIGHBOURS + 1)
    if chosen.empty:
        return None
    what = noun(kind, 1).capitalize()
    label = f"{what} #{int(index) + 1} (first) and its {len(chosen) - 1} nearest on the map"
    return chosen, label


def _captions(chosen: pd.DataFrame, item: str) -> list[str]:
    target = next((c for c in chosen.columns if c not in MAP_COLUMNS), None)
    captions = []
    for _, r in chosen.iterrows():
        caption = str(r[item])  # the same 1-based label as the map's tooltip
        if "formula" in chosen.columns:  # materials: "#12 NaCl"
            caption += f" {r['formula']}"
        if target and np.isfinite(r[target]):
            caption += f" · {target} {r[target]:.3g}"
        captions.append(caption)
    return captions


def captioned_depictions(chosen: pd.DataFrame) -> list[tuple[Any, str]]:
    """Gallery items for map points: depiction, row number and target value."""
    return depiction_gallery(list(chosen["smiles"]), _captions(chosen, "molecule"))


def captioned_cells(
    session: SessionState, chosen: pd.DataFrame, limit: int = MAX_CELL_RENDERS
) -> list[tuple[str, str]]:
    """Gallery items for structures on the map: a rendering of each cell and its caption."""
    from matfuse.app.crystal_view import render_structure

    table = session.table
    if table is None or kind_view(session.kind).picture != "cell":
        return []
    items: list[tuple[str, str]] = []
    directory = session.workdir / "map-cells"
    for (_, r), caption in zip(chosen.iterrows(), _captions(chosen, "material"), strict=True):
        if len(items) >= limit:
            break
        structure = table.parsed.structures[int(r["row"])]
        if structure is not None:
            path = render_structure(structure, directory / f"row{int(r['row']) + 1}.png")
            items.append((str(path), caption))
    return items


def selected_table(chosen: pd.DataFrame) -> pd.DataFrame:
    """The chosen materials as a table (compositions have no picture to draw)."""
    drop = [c for c in ("x", "y", "row") if c in chosen.columns]
    return chosen.drop(columns=drop).reset_index(drop=True)


def kind_updates(
    kind: str, modalities: Sequence[str], choices: Sequence[Sequence[str]]
) -> list[Any]:
    """Show the checkbox groups that can read ``kind`` and tick its default encoders.

    Groups of other modalities are hidden *and* cleared, so a molecule encoder left ticked
    from an earlier dataset never reaches training on structures.
    """
    allowed = set(compatible_modalities(kind))
    defaults = default_encoders_for(kind)
    updates: list[Any] = []
    for modality, names in zip(modalities, choices, strict=True):
        shown = modality in allowed
        value = [n for n in defaults if n in names] if shown else []
        updates.append(gr.update(visible=shown, value=value))
    return updates


def kind_note(kind: str) -> str:
    allowed = ", ".join(compatible_modalities(kind)) or "none"
    defaults = " + ".join(default_encoders_for(kind))
    return (
        f"Data: **{noun(kind)}** — encoders of modality {allowed} can read them; "
        f"the default set is **{defaults}**."
    )


@dataclass
class RepresentTab:
    """The per-modality encoder checkbox groups, read by the Learn tab."""

    groups: list[gr.CheckboxGroup]
    #: modality of each group, in the same order
    modalities: list[str]
    #: encoder names of each group, in the same order
    names: list[list[str]]
    kind_note: gr.Markdown

    def on_kind(self, session: SessionState) -> list[Any]:
        """Outputs for :attr:`outputs` after the Data tab loaded (or re-read) a table."""
        kind = session.kind
        return [*kind_updates(kind, self.modalities, self.names), kind_note(kind)]

    @property
    def outputs(self) -> list[Any]:
        return [*self.groups, self.kind_note]


def build(state: gr.State) -> RepresentTab:
    """Lay out the Represent tab and wire its events."""
    groups_spec = encoder_groups()
    shown = set(compatible_modalities(DEFAULT_KIND))
    defaults = default_encoders_for(DEFAULT_KIND)
    with gr.Tab("2 · Represent", id="represent"):
        gr.Markdown(
            "Choose the encoders to fuse. Each block is standardised and weighted equally "
            "before concatenation (late fusion). Only encoders that can read the loaded "
            "data are offered; the default set per kind was picked on benchmarks "
            "(MoleculeNet for molecules)."
        )
        kind_box = gr.Markdown(kind_note(DEFAULT_KIND), elem_id="represent-kind")
        groups = []
        modalities: list[str] = []
        all_names: list[list[str]] = []
        with gr.Row():
            for modality, choices in groups_spec.items():
                names = [value for _, value in choices]
                modalities.append(modality)
                all_names.append(names)
                groups.append(
                    gr.CheckboxGroup(
                        choices=choices,
                        value=[e for e in defaults if e in names] if modality in shown else [],
                        label=f"{modality} encoders",
                        info="name · dimension · pretrained flag",
                        # long lists get more room, so they wrap into columns
                        scale=max(1, min(3, len(choices) // 5)),
                        visible=modality in shown,
                        elem_id=f"encoders-{modality}",
                    )
                )
        note_missing = unavailable_note()
        if note_missing:
            gr.Markdown(note_missing)
        with gr.Accordion("All registered encoders", open=False):
            gr.Dataframe(encoder_catalogue(), interactive=False, max_height=360)
        with gr.Row():
            method = gr.Radio(projection_methods(), value="PCA", label="Projection")
            map_btn = gr.Button("Draw latent map", variant="primary", elem_id="draw-map")
        note = gr.Markdown(elem_id="map-note")
        with gr.HTML(html_template="@children", js_on_load=MAP_CLICK_JS) as map_box:
            scatter = gr.ScatterPlot(
                x="x",
                y="y",
                tooltip=list(map_columns(DEFAULT_KIND)),
                height=460,
                label="Fused latent space",
                show_label=False,  # the note above says what the map is and how to use it
                elem_id="latent-map",
            )
        picked = hidden_gallery("Selected molecules", "map-depictions", height=260)
        picked_table = hidden_table("Selected materials", "map-selection", max_height=300)
        map_store = gr.State(None)

    # ``progress`` must be positional (before the varargs) for Gradio to inject it
    def draw(
        session: SessionState,
        method_name: str,
        progress: gr.Progress = gr.Progress(),
        *groups_values: list[str],
    ) -> tuple[Any, ...]:
        encoders = chosen_encoders(*groups_values)

        def on_encoder(i: int, n: int, name: str) -> None:
            progress(i / max(n, 1), desc=f"computing {name} features")

        try:
            frame, text, target = map_for_session(session, encoders, method_name, on_encoder)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        kind = session.kind
        item, key = map_columns(kind)
        tooltip = [item, key, *([target] if target else [])]
        colours = target_colours(frame[target].to_numpy()) if target else None
        colour_col = None
        if colours is not None and target:
            units = target_units(target)
            colour_col = f"{target} ({units})" if units and units not in target else target
            colour_col = f"{colour_col} class"
            frame[colour_col] = colours.labels
        plot = gr.ScatterPlot(
            value=frame,
            x="x",
            y="y",
            color=colour_col,
            color_map=colours.colours if colours is not None else None,
            tooltip=tooltip,
            x_title="component 1",
            y_title="component 2",
        )
        how = f"{target} — {colours.note}" if colours is not None else "none"
        text += (
            f" · {len(frame):,} {noun(kind)} · colour: {how}. "
            f"Drag across the map to see the {noun(kind)} in a range, or click one."
        )
        store = {"frame": frame, "kind": kind}
        hidden = gr.Dataframe(visible=False)
        return plot, text, store, gr.Gallery(value=[], visible=False), hidden

    def select(session: SessionState, store: dict[str, Any] | None, evt: gr.SelectData) -> Any:
        frame = store["frame"] if store else None
        kind = store["kind"] if store else DEFAULT_KIND
        picked_rows = selection(frame, evt.index, kind)
        if picked_rows is None:
            return gr.skip(), gr.skip()
        chosen, label = picked_rows
        picture = kind_view(kind).picture
        if picture == "depiction":
            items = captioned_depictions(chosen)
            return gr.Gallery(value=items, label=label, visible=bool(items)), gr.skip()
        items = captioned_cells(session, chosen) if picture == "cell" else []
        return (
            gr.Gallery(value=items, label=label, visible=bool(items)),
            gr.Dataframe(value=selected_table(chosen), label=label, visible=True),
        )

    map_btn.click(
        draw,
        [state, method, *groups],
        [scatter, note, map_store, picked, picked_table],
        concurrency_id="compute",
        concurrency_limit=COMPUTE_SLOTS,
    )
    # brushing a range (the plot's own event) and clicking a point (the wrapper's script)
    scatter.select(select, [state, map_store], [picked, picked_table])
    map_box.select(select, [state, map_store], [picked, picked_table])
    return RepresentTab(groups=groups, modalities=modalities, names=all_names, kind_note=kind_box)
