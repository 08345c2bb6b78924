"""The structure view: what a crystal is (formula, space group, lattice) and how it looks.

Three outputs per structure, all made without a browser so they are unit-tested:

* a Markdown summary — formula, space group from :func:`matfuse.materials.symmetry.get_symmetry`
  (the library's spglib settings, so the view and the space-group split agree), lattice
  parameters, volume, density;
* a PNG of the cell drawn with ASE's ``plot_atoms`` (a maintained renderer with the usual
  Jmol element colours) on a matplotlib ``Figure`` — never ``pyplot``, whose global state
  is not thread-safe under Gradio's worker threads;
* a binary glTF (``.glb``) of the same cell for Gradio's built-in ``Model3D`` viewer, which
  can be rotated and zoomed. glTF is written here with numpy (spheres with vertex colours
  and thin prisms for the cell edges) because no mesh library is a dependency.

Atoms on a face, edge or corner of the cell are drawn at every equivalent boundary position,
so a rocksalt cell shows its full cube rather than a corner with a few atoms.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

logger = logging.getLogger(__name__)

#: Cells with more sites than this are drawn without boundary images (they add clutter and
#: cost, and big cells rarely have atoms exactly on the faces).
MAX_IMAGE_SITES = 400
#: Fractional distance from a cell face within which an atom is also drawn on the other face.
BOUNDARY_TOL = 1e-3
ATOM_SCALE = 0.45  # of the covalent radius: small enough to see the cell inside
RENDER_SIZE_IN = (4.6, 4.6)
RENDER_DPI = 100
_ROTATION = "-75x,-10y,-5z"


@dataclass(frozen=True)
class StructureSummary:
    """What the structure view prints about one crystal."""

    formula: str
    reduced_formula: str
    n_sites: int
    space_group: str
    crystal_system: str
    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float
    volume: float
    density: float

    def markdown(self, title: str = "") -> str:
        head = f"### {title}\n" if title else ""
        return (
            f"{head}**{self.reduced_formula}** ({self.formula}, {self.n_sites} sites) · "
            f"space group **{self.space_group}** · {self.crystal_system}\n\n"
            f"a = {self.a:.3f} Å, b = {self.b:.3f} Å, c = {self.c:.3f} Å · "
            f"α = {self.alpha:.1f}°, β = {self.beta:.1f}°, γ = {self.gamma:.1f}° · "
            f"V = {self.volume:.1f} Å³ · ρ = {self.density:.2f} g/cm³"
        )


def summarize_structure(structure: Any) -> StructureSummary:
    """Formula, space group and lattice of a pymatgen ``Structure``.

    A structure whose symmetry cannot be found (spglib gives up on some disordered cells)
    still gets a summary, with the reason in place of the space group.
    """
    from matfuse.materials.symmetry import get_symmetry

    try:
        info = get_symmetry(structure)
        group, system = f"{info.symbol} (No. {info.number})", info.crystal_system
    except Exception as err:  # noqa: BLE001 - spglib fails in several ways; show, don't crash
        logger.info("no space group for %s: %s", structure.composition.reduced_formula, err)
        group, system = "unknown", f"symmetry analysis failed: {err}"
    lattice = structure.lattice
    return StructureSummary(
        formula=structure.composition.formula,
        reduced_formula=structure.composition.reduced_formula,
        n_sites=len(structure),
        space_group=group,
        crystal_system=system,
        a=float(lattice.a),
        b=float(lattice.b),
        c=float(lattice.c),
        alpha=float(lattice.alpha),
        beta=float(lattice.beta),
        gamma=float(lattice.gamma),
        volume=float(lattice.volume),
        density=float(structure.density),
    )


def _display_sites(structure: Any) -> tuple[list[str], np.ndarray]:
    """Element symbols and Cartesian positions, with boundary images added (see module doc)."""
    frac = np.mod(np.asarray(structure.frac_coords, dtype=float), 1.0)
    frac[np.isclose(frac, 1.0, atol=BOUNDARY_TOL)] = 0.0
    symbols = [_symbol(site) for site in structure]
    if len(structure) > MAX_IMAGE_SITES:
        return symbols, structure.lattice.get_cartesian_coords(frac)
    out_symbols: list[str] = []
    out_frac: list[np.ndarray] = []
    for symbol, f in zip(symbols, frac, strict=True):
        on_face = np.abs(f) < BOUNDARY_TOL
        for shift in np.ndindex(2, 2, 2):
            s = np.array(shift, dtype=float)
            if np.any(s[~on_face] > 0):
                continue  # only shift along axes where the atom sits on the face
            out_symbols.append(symbol)
            out_frac.append(f + s)
    return out_symbols, structure.lattice.get_cartesian_coords(np.array(out_frac))


def _symbol(site: Any) -> str:
    """The majority species of a (possibly disordered) site."""
    species = site.species
    best = max(species.items(), key=lambda kv: kv[1])[0]
    return str(getattr(best, "symbol", best))


def _ase_atoms(structure: Any) -> Any:
    from ase import Atoms

    symbols, positions = _display_sites(structure)
    return Atoms(symbols=symbols, positions=positions, cell=structure.lattice.matrix, pbc=False)


def _colour(symbol: str) -> np.ndarray:
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors

    return np.asarray(jmol_colors[atomic_numbers.get(symbol, 0)], dtype=float)


def _rgb(symbol: str) -> tuple[float, float, float]:
    """The element colour as the (r, g, b) tuple matplotlib's typed API asks for."""
    r, g, b = _colour(symbol)
    return float(r), float(g), float(b)


def _radius(symbol: str) -> float:
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers.get(symbol, 0)]) * ATOM_SCALE


def render_structure(structure: Any, path: str | Path, title: str = "") -> Path:
    """Draw the cell (atoms coloured by element, cell edges dashed) to a PNG at ``path``."""
    from ase.visualize.plot import plot_atoms

    atoms = _ase_atoms(structure)
    symbols = atoms.get_chemical_symbols()
    fig = Figure(figsize=RENDER_SIZE_IN)
    ax = fig.add_subplot()
    plot_atoms(
        atoms,
        ax=ax,
        rotation=_ROTATION,
        radii=[_radius(s) for s in symbols],
        show_unit_cell=2,
    )
    ax.set_axis_off()
    legend = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=9,
            markerfacecolor=_rgb(el),
            markeredgecolor="k",
            label=el,
        )
        for el in dict.fromkeys(symbols)
    ]
    ax.legend(handles=legend, loc="upper right", fontsize=8, frameon=True)
    ax.set_title(title or structure.composition.reduced_formula, fontsize=11)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=RENDER_DPI)
    fig.clear()
    return out


# ------------------------------------------------------------------------ glTF export


def _unit_sphere(n_lat: int = 10, n_lon: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (also the normals) and triangles of a UV sphere of radius 1."""
    theta = np.linspace(0.0, np.pi, n_lat + 1)
    phi = np.linspace(0.0, 2.0 * np.pi, n_lon, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    verts = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)
    verts = verts.reshape(-1, 3)
    faces = []
    for i in range(n_lat):
        for j in range(n_lon):
            a = i * n_lon + j
            b = i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [(a, c, b), (b, c, d)]
    return verts, np.asarray(faces, dtype=np.uint32)


def _prism(
    start: np.ndarray, end: np.ndarray, radius: float, sides: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A thin prism from ``start`` to ``end``: vertices, normals and triangles."""
    axis = end - start
    length = float(np.linalg.norm(axis))
    axis = axis / max(length, 1e-12)
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    angles = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    ring = np.outer(np.cos(angles), u) + np.outer(np.sin(angles), v)
    verts = np.vstack([start + radius * ring, end + radius * ring])
    normals = np.vstack([ring, ring])
    faces = []
    for k in range(sides):
        a, b = k, (k + 1) % sides
        faces += [(a, b, a + sides), (b, b + sides, a + sides)]
    return verts, normals, np.asarray(faces, dtype=np.uint32)


def structure_mesh(structure: Any) -> dict[str, np.ndarray]:
    """One triangle mesh of the cell: positions, normals, per-vertex colours, indices."""
    symbols, positions = _display_sites(structure)
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    centre = matrix.sum(axis=0) / 2.0
    sphere, sphere_faces = _unit_sphere()
    parts_v, parts_n, parts_c, parts_f = [], [], [], []
    offset = 0
    for symbol, pos in zip(symbols, positions, strict=True):
        parts_v.append(sphere * _radius(symbol) + (pos - centre))
        parts_n.append(sphere)
        parts_c.append(np.tile(_colour(symbol), (len(sphere), 1)))
        parts_f.append(sphere_faces + offset)
        offset += len(sphere)
    corners = np.array(list(np.ndindex(2, 2, 2)), dtype=float)
    edge_radius = 0.03 * float(np.linalg.norm(matrix, axis=1).mean()) / 4.0
    for i, ci in enumerate(corners):
        for j in range(i + 1, len(corners)):
            if np.abs(ci - corners[j]).sum() != 1:
                continue  # only neighbouring corners share an edge
            start, end = ci @ matrix - centre, corners[j] @ matrix - centre
            verts, normals, faces = _prism(start, end, max(edge_radius, 0.02))
            parts_v.append(verts)
            parts_n.append(normals)
            parts_c.append(np.tile([0.2, 0.2, 0.2], (len(verts), 1)))
            parts_f.append(faces + offset)
            offset += len(verts)
    return {
        "positions": np.vstack(parts_v).astype(np.float32),
        "normals": np.vstack(parts_n).astype(np.float32),
        "colors": np.vstack(parts_c).astype(np.float32),
        "indices": np.concatenate([f.ravel() for f in parts_f]).astype(np.uint32),
    }


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * ((4 - len(data) % 4) % 4)


def write_glb(structure: Any, path: str | Path) -> Path:
    """Write the cell as a binary glTF 2.0 file for ``gr.Model3D``."""
    mesh = structure_mesh(structure)
    blobs = [mesh["positions"], mesh["normals"], mesh["colors"], mesh["indices"]]
    views, chunks, offset = [], [], 0
    for k, blob in enumerate(blobs):
        data = _pad(blob.tobytes(), b"\x00")
        target = 34963 if k == 3 else 34962  # ELEMENT_ARRAY_BUFFER / ARRAY_BUFFER
        views.append(
            {"buffer": 0, "byteOffset": offset, "byteLength": blob.nbytes, "target": target}
        )
        chunks.append(data)
        offset += len(data)
    n_vertices = len(mesh["positions"])
    accessors = [
        {
            "bufferView": 0,
            "componentType": 5126,
            "count": n_vertices,
            "type": "VEC3",
            "min": mesh["positions"].min(axis=0).tolist(),
            "max": mesh["positions"].max(axis=0).tolist(),
        },
        {"bufferView": 1, "componentType": 5126, "count": n_vertices, "type": "VEC3"},
        {"bufferView": 2, "componentType": 5126, "count": n_vertices, "type": "VEC3"},
        {
            "bufferView": 3,
            "componentType": 5125,
            "count": int(mesh["indices"].size),
            "type": "SCALAR",
        },
    ]
    gltf = {
        "asset": {"version": "2.0", "generator": "matfuse"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": structure.composition.reduced_formula}],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2},
                        "indices": 3,
                        "material": 0,
                    }
                ]
            }
        ],
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.6,
                }
            }
        ],
        "buffers": [{"byteLength": offset}],
        "bufferViews": views,
        "accessors": accessors,
    }
    json_chunk = _pad(json.dumps(gltf, separators=(",", ":")).encode(), b" ")
    bin_chunk = b"".join(chunks)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        handle.write(struct.pack("<4sII", b"glTF", 2, total))
        handle.write(struct.pack("<I4s", len(json_chunk), b"JSON"))
        handle.write(json_chunk)
        handle.write(struct.pack("<I4s", len(bin_chunk), b"BIN\x00"))
        handle.write(bin_chunk)
    return out


@dataclass
class StructureView:
    """Everything the Data and Predict tabs show for one structure."""

    summary: StructureSummary
    image: Path
    model3d: Path

    def markdown(self, title: str = "") -> str:
        return self.summary.markdown(title)


def view_structure(
    structure: Any, directory: str | Path, stem: str, title: str = ""
) -> StructureView:
    """Summary, PNG and GLB of ``structure``, the files written under ``directory``."""
    directory = Path(directory)
    summary = summarize_structure(structure)
    label = title or f"{summary.reduced_formula} · {summary.space_group.split(' ')[0]}"
    image = render_structure(structure, directory / f"{stem}.png", title=label)
    model = write_glb(structure, directory / f"{stem}.glb")
    return StructureView(summary=summary, image=image, model3d=model)
