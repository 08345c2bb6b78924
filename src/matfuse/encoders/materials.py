"""Encoders of inorganic materials: compositions and crystal structures.

Three encoders, registered in :mod:`matfuse.encoders.builtins`:

* ``composition`` — Magpie-style statistics of element properties over a formula
  (Ward et al. 2016), with the element data taken from pymatgen rather than typed in;
* ``structure-descriptors`` — a classical fingerprint of a crystal: density and packing,
  statistics of local environments, a radial distribution function and symmetry;
* ``chgnet`` — the 64-d crystal embedding of the pretrained CHGNet potential plus its
  predicted energy per atom, optionally after relaxation.

pymatgen, spglib and chgnet come from the optional ``materials`` extra, so they are imported
inside the methods: registering these encoders must not need them.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from matfuse.encoders.base import BaseEncoder

# ------------------------------------------------------------------------ shared base


class MaterialEncoder(BaseEncoder):
    """Base of encoders over compositions or structures: parsing, conversion (a structure
    gives its composition), de-duplication and caching are :class:`BaseEncoder`'s one
    encode loop; subclasses implement ``_compute(objects) -> (values, row errors)``.
    """

    modality: ClassVar[str] = "structure"

    def _compute(self, objects: list[Any]) -> tuple[np.ndarray, list[str | None]]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _compute_unique(
        self, objects: list[Any], keys: list[str]
    ) -> tuple[np.ndarray, list[str | None]]:
        return self._compute(objects)


# ---------------------------------------------------------------------- element data

#: Element properties from pymatgen used by ``composition`` (Magpie names where they match).
ELEMENT_PROPERTIES = (
    "Number",
    "MendeleevNumber",
    "AtomicWeight",
    "MeltingT",
    "BoilingT",
    "Column",
    "Row",
    "AtomicRadius",
    "VdWRadius",
    "Electronegativity",
    "IonizationEnergy",
    "ElectronAffinity",
    "MolarVolume",
    "NsValence",
    "NpValence",
    "NdValence",
    "NfValence",
    "NValence",
    "NsUnfilled",
    "NpUnfilled",
    "NdUnfilled",
    "NfUnfilled",
    "NUnfilled",
)
#: Statistics over the fraction-weighted element distribution of a composition.
STATISTICS = ("mean", "std", "min", "max", "range", "mode")
#: Elements beyond this have almost no data in pymatgen; compositions with them are refused.
MAX_Z = 103
_ORBITAL = re.compile(r"(\d+)([spdf])(\d+)")
_CAPACITY = {"s": 2, "p": 6, "d": 10, "f": 14}


def _valence(element: Any) -> dict[str, float]:
    """Electrons outside the noble-gas core and vacancies in those subshells, per s/p/d/f.

    Same convention as Magpie: a filled 3d10 of Ga counts as 10 d valence electrons and 0
    unfilled d states.
    """
    text = str(element.electronic_structure)
    valence = text.split("]", 1)[1] if "]" in text else text
    out = {f"N{o}Valence": 0.0 for o in "spdf"} | {f"N{o}Unfilled": 0.0 for o in "spdf"}
    for _, orbital, count in _ORBITAL.findall(valence):
        out[f"N{orbital}Valence"] += float(count)
        out[f"N{orbital}Unfilled"] += float(_CAPACITY[orbital] - int(count))
    out["NValence"] = sum(out[f"N{o}Valence"] for o in "spdf")
    out["NUnfilled"] = sum(out[f"N{o}Unfilled"] for o in "spdf")
    return out


def _element_values(element: Any) -> dict[str, float]:
    def num(attr: str) -> float:
        try:
            value = getattr(element, attr)
            return float(value) if value is not None else np.nan
        except Exception:  # pymatgen raises or warns for missing data; treat as missing
            return np.nan

    return {
        "Number": float(element.Z),
        "MendeleevNumber": num("mendeleev_no"),
        "AtomicWeight": num("atomic_mass"),
        "MeltingT": num("melting_point"),
        "BoilingT": num("boiling_point"),
        "Column": num("group"),
        "Row": num("row"),
        "AtomicRadius": num("atomic_radius"),
        "VdWRadius": num("van_der_waals_radius"),
        "Electronegativity": num("X"),
        "IonizationEnergy": num("ionization_energy"),
        "ElectronAffinity": num("electron_affinity"),
        "MolarVolume": num("molar_volume"),
        **_valence(element),
    }


@lru_cache(maxsize=1)
def element_property_table() -> np.ndarray:
    """(MAX_Z + 1, len(ELEMENT_PROPERTIES)) table of element data; row ``Z`` is element Z.

    Missing values (e.g. no electronegativity for noble gases, no radius for some
    actinides) are filled with the median over elements 1–103 so that every composition
    gets a finite vector; this is a fixed, data-independent choice, so train and test rows
    are treated alike.
    """
    from pymatgen.core import Element

    table = np.full((MAX_Z + 1, len(ELEMENT_PROPERTIES)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in range(1, MAX_Z + 1):
            values = _element_values(Element.from_Z(z))
            table[z] = [values[p] for p in ELEMENT_PROPERTIES]
    medians = np.nanmedian(table[1:], axis=0)
    missing = np.isnan(table)
    missing[0] = False
    table[missing] = np.take(medians, np.nonzero(missing)[1])
    table[0] = np.nan
    return table


def _prop_index(name: str) -> int:
    return ELEMENT_PROPERTIES.index(name)


# ------------------------------------------------------------------- composition


_STOICH_NORMS = (2, 3, 5, 7, 10)
_EXTRA_FEATURES = (
    "n_elements",
    *(f"stoich_l{p}" for p in _STOICH_NORMS),
    "frac_s_valence",
    "frac_p_valence",
    "frac_d_valence",
    "frac_f_valence",
    "max_ionic_char",
    "mean_ionic_char",
)


def composition_features(fractions: np.ndarray, props: np.ndarray) -> np.ndarray:
    """Magpie-style vector of one composition from element fractions and their properties.

    ``fractions`` is (k,) summing to 1 and ``props`` the (k, P) property rows of its k
    elements. Returns the statistics (stat-major) followed by the stoichiometric,
    valence-orbital and ionic-character attributes.
    """
    f = fractions[:, None]
    mean = (f * props).sum(axis=0)
    std = np.sqrt((f * (props - mean) ** 2).sum(axis=0))
    lo, hi = props.min(axis=0), props.max(axis=0)
    # mode: the property of the most abundant element, ties resolved to the smaller value
    top = fractions >= fractions.max() - 1e-12
    mode = props[top].min(axis=0)
    stats = np.concatenate([mean, std, lo, hi, hi - lo, mode])
    norms = [float((fractions**p).sum() ** (1.0 / p)) for p in _STOICH_NORMS]
    val = [mean[_prop_index(f"N{o}Valence")] for o in "spdf"]
    total = mean[_prop_index("NValence")]
    orbital = [v / total if total > 0 else 0.0 for v in val]
    x = props[:, _prop_index("Electronegativity")]
    ionic = 1.0 - np.exp(-0.25 * (x[:, None] - x[None, :]) ** 2)
    extras = [float(len(fractions)), *norms, *orbital]
    extras += [float(ionic.max()), float(fractions @ ionic @ fractions)]
    return np.concatenate([stats, np.asarray(extras)])


class CompositionEncoder(MaterialEncoder):
    """Element-property statistics of a composition (Magpie-style; 150 floats).

    Accepts formula strings, pymatgen ``Composition`` objects, structures (their
    composition is used) and CIF/POSCAR text. Features depend on element fractions only, so
    Fe2O3 and Fe4O6 give the same row (and share one cache entry).
    """

    name: ClassVar[str] = "composition"
    modality: ClassVar[str] = "composition"
    pretrained: ClassVar[bool] = False
    description: ClassVar[str] = "Magpie-style element-property statistics (pymatgen data)"

    def __init__(self, cache: bool = False) -> None:
        self.cache = cache

    @property
    def dim(self) -> int:
        return len(STATISTICS) * len(ELEMENT_PROPERTIES) + len(_EXTRA_FEATURES)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [f"{s}_{p}" for s in STATISTICS for p in ELEMENT_PROPERTIES]
        return np.array([*names, *_EXTRA_FEATURES], dtype=object)

    def _compute(self, objects: list[Any]) -> tuple[np.ndarray, list[str | None]]:
        table = element_property_table()
        rows = []
        errors: list[str | None] = []
        for comp in objects:
            beyond = sorted(el.symbol for el in comp.elements if el.Z > MAX_Z)
            if beyond:
                errors.append(f"no element data for {', '.join(beyond)} (Z > {MAX_Z})")
                rows.append(np.full(self.dim, np.nan))
                continue
            errors.append(None)
            frac = comp.fractional_composition
            els = sorted(frac.elements, key=lambda e: e.Z)
            fractions = np.array([frac[e] for e in els], dtype=float)
            props = table[[e.Z for e in els]]
            rows.append(composition_features(fractions / fractions.sum(), props))
        values = np.vstack(rows) if rows else np.zeros((0, self.dim))
        return values, errors


# --------------------------------------------------------------- structure fingerprint

_GLOBAL_FEATURES = ("density", "volume_per_atom", "packing_fraction")
_LOCAL_FEATURES = ("nn_distance", "nn_distance_rel", "effective_cn", "neighbour_dX")
_SITE_STATS = ("mean", "std", "min", "max")


def _site_properties(structure: Any, column: int) -> np.ndarray:
    """One element property per site; occupancy-weighted over species of disordered sites."""
    table = element_property_table()
    out = np.empty(len(structure))
    for i, site in enumerate(structure):
        items = [(sp, occ) for sp, occ in site.species.items()]
        occ = sum(o for _, o in items)
        out[i] = sum(table[min(_z(sp), MAX_Z), column] * o for sp, o in items) / occ
    return out


def _z(species: Any) -> int:
    return int(getattr(species, "Z", 0) or 0)


def structure_fingerprint(
    structure: Any, *, rdf_cutoff: float = 8.0, rdf_bins: int = 32
) -> tuple[np.ndarray | None, str | None]:
    """Density/packing, local-environment statistics and a smoothed RDF of one structure.

    Local environments use Hoppe's effective coordination number (bond lengths weighted by
    ``exp(1 - (l / l_av)^6)``), which needs no bonding cutoff and varies smoothly with
    distortions, unlike Voronoi or fixed-cutoff coordination numbers. Returns ``(None,
    reason)`` when an atom has no neighbour within ``rdf_cutoff``.
    """
    n = len(structure)
    volume = float(structure.volume)
    n_atoms = float(structure.composition.num_atoms)
    radius = _site_properties(structure, _prop_index("AtomicRadius"))
    x = _site_properties(structure, _prop_index("Electronegativity"))
    occupancy = np.array([sum(site.species.values()) for site in structure])
    packing = float((occupancy * 4.0 / 3.0 * np.pi * radius**3).sum() / volume)
    glob = [float(structure.density), volume / n_atoms, packing]

    centers, points, _, dist = structure.get_neighbor_list(rdf_cutoff, exclude_self=True)
    centers = np.asarray(centers, dtype=np.int64)
    points = np.asarray(points, dtype=np.int64)
    dist = np.asarray(dist, dtype=float)
    counts = np.bincount(centers, minlength=n)
    if (counts == 0).any():
        lonely = int(np.flatnonzero(counts == 0)[0])
        return None, f"isolated atom: site {lonely} has no neighbour within {rdf_cutoff:g} Å"
    d_min = np.full(n, np.inf)
    np.minimum.at(d_min, centers, dist)
    order = np.lexsort((dist, centers))
    first = order[np.r_[0, np.flatnonzero(np.diff(centers[order])) + 1]]
    nn_rel = dist[first] / (radius[centers[first]] + radius[points[first]])
    l_av = d_min.copy()
    for _ in range(3):  # Hoppe's iteration for the weighted mean bond length
        w = np.exp(1.0 - (dist / l_av[centers]) ** 6)
        l_av = np.bincount(centers, w * dist, minlength=n) / np.bincount(centers, w, minlength=n)
    w = np.exp(1.0 - (dist / l_av[centers]) ** 6)
    econ = np.bincount(centers, w, minlength=n)
    dx = np.bincount(centers, w * np.abs(x[centers] - x[points]), minlength=n) / econ
    local = []
    for per_site in (d_min, nn_rel, econ, dx):
        local += [per_site.mean(), per_site.std(), per_site.min(), per_site.max()]

    width = rdf_cutoff / rdf_bins
    r = (np.arange(rdf_bins) + 0.5) * width
    gauss = np.exp(-0.5 * ((r[None, :] - dist[:, None]) / width) ** 2) / (
        width * np.sqrt(2 * np.pi)
    )
    rdf = gauss.sum(axis=0) / (n * 4.0 * np.pi * r**2 * (n / volume))
    return np.concatenate([glob, local, rdf]), None


class StructureDescriptorEncoder(MaterialEncoder):
    """Classical crystal fingerprint plus symmetry (3 + 16 + ``rdf_bins`` + 9 floats).

    Global: density, volume per atom, packing fraction. Local: mean/std/min/max over sites
    of the nearest-neighbour distance (absolute and relative to the atomic radii), the
    effective coordination number and the bond-weighted electronegativity difference.
    Radial distribution function g(r) up to ``rdf_cutoff`` Å, Gaussian-smoothed. Symmetry:
    space group number, point-group order and crystal-system one-hot (spglib with
    ``symprec``/``angle_tolerance``).
    """

    name: ClassVar[str] = "structure-descriptors"
    modality: ClassVar[str] = "structure"
    pretrained: ClassVar[bool] = False
    description: ClassVar[str] = "density, local environments, RDF and symmetry of a crystal"

    def __init__(
        self,
        rdf_cutoff: float = 8.0,
        rdf_bins: int = 32,
        symprec: float = 0.1,
        angle_tolerance: float = 5.0,
        cache: bool = False,
    ) -> None:
        self.rdf_cutoff = rdf_cutoff
        self.rdf_bins = rdf_bins
        self.symprec = symprec
        self.angle_tolerance = angle_tolerance
        self.cache = cache

    @property
    def dim(self) -> int:
        return len(_GLOBAL_FEATURES) + len(_LOCAL_FEATURES) * len(_SITE_STATS) + self.rdf_bins + 9

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        from matfuse.materials.symmetry import CRYSTAL_SYSTEMS

        width = self.rdf_cutoff / self.rdf_bins
        names = [*_GLOBAL_FEATURES]
        names += [f"{s}_{f}" for f in _LOCAL_FEATURES for s in _SITE_STATS]
        names += [f"rdf_{(k + 0.5) * width:.2f}" for k in range(self.rdf_bins)]
        names += ["spacegroup_number", "point_group_order"]
        names += [f"crystal_system_{c}" for c in CRYSTAL_SYSTEMS]
        return np.array(names, dtype=object)

    def _compute(self, objects: list[Any]) -> tuple[np.ndarray, list[str | None]]:
        from matfuse.materials.symmetry import crystal_system_onehot, get_symmetry
        from matfuse.rows import first_line

        values = np.full((len(objects), self.dim), np.nan)
        errors: list[str | None] = [None] * len(objects)
        for i, structure in enumerate(objects):
            try:
                fp, err = structure_fingerprint(
                    structure, rdf_cutoff=self.rdf_cutoff, rdf_bins=self.rdf_bins
                )
                if fp is None:
                    errors[i] = err
                    continue
                sym = get_symmetry(
                    structure, symprec=self.symprec, angle_tolerance=self.angle_tolerance
                )
            except Exception as exc:  # a spglib or neighbour-search failure flags the row
                errors[i] = f"structure descriptors failed: {first_line(exc)}"
                continue
            symmetry = [float(sym.number), float(sym.n_operations)]
            values[i] = np.concatenate([fp, symmetry, crystal_system_onehot(sym.crystal_system)])
        return values, errors


# ------------------------------------------------------------------------ CHGNet

CHGNET_FEATURE_DIM = 64


class CHGNetEncoder(MaterialEncoder):
    """Pretrained CHGNet crystal embedding (64 floats) plus predicted energy per atom.

    The embedding is CHGNet's pooled atom features right before its energy read-out, from
    the weights shipped in the ``chgnet`` wheel (trained on MPtrj, no download). With
    ``relax=True`` each structure is first relaxed with CHGNet (FIRE, ``fmax`` eV/Å,
    at most ``relax_steps`` steps), which is slower by about the number of steps but
    removes the dependence on how the input geometry was made. ``n_threads`` caps torch's
    threads (one is fastest for small cells; see
    :func:`matfuse.materials.energy.torch_threads`). Results are cached by structure hash.
    Disordered structures and atoms without neighbours within 6 Å are row errors.
    """

    name: ClassVar[str] = "chgnet"
    modality: ClassVar[str] = "structure"
    pretrained: ClassVar[bool] = True
    description: ClassVar[str] = "CHGNet crystal embedding + energy/atom (pretrained, MPtrj)"
    cache_by_default: ClassVar[bool] = True

    def __init__(
        self,
        relax: bool = False,
        batch_size: int = 16,
        model_name: str = "0.3.0",
        device: str = "cpu",
        fmax: float = 0.1,
        relax_steps: int = 500,
        n_threads: int | None = 1,
        cache: bool = True,
    ) -> None:
        self.relax = relax
        self.batch_size = batch_size
        self.model_name = model_name
        self.device = device
        self.fmax = fmax
        self.relax_steps = relax_steps
        self.n_threads = n_threads
        self.cache = cache

    @property
    def dim(self) -> int:
        return CHGNET_FEATURE_DIM + 1

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [f"chgnet_{i}" for i in range(CHGNET_FEATURE_DIM)]
        return np.array([*names, "chgnet_energy_per_atom"], dtype=object)

    def _compute(self, objects: list[Any]) -> tuple[np.ndarray, list[str | None]]:
        from matfuse.materials.energy import load_chgnet, predict_chgnet, relax_structure

        values = np.full((len(objects), self.dim), np.nan)
        errors: list[str | None] = [None] * len(objects)
        structures: list[Any] = list(objects)
        model = load_chgnet(self.model_name, self.device)
        for i, s in enumerate(structures):
            if not s.is_ordered:
                errors[i], structures[i] = "disordered structure: CHGNet needs ordered sites", None
            elif max(el.Z for el in s.composition.elements) > 94:
                errors[i], structures[i] = "element beyond Pu: not in CHGNet's training data", None
            elif self.relax:
                res = relax_structure(
                    s,
                    fmax=self.fmax,
                    steps=self.relax_steps,
                    model=model,
                    n_threads=self.n_threads,
                )
                structures[i], errors[i] = res.structure, res.error
        idx = [i for i, s in enumerate(structures) if s is not None]
        if not idx:
            return values, errors
        energies, feats, errs = predict_chgnet(
            [structures[i] for i in idx],
            model=model,
            batch_size=self.batch_size,
            crystal_features=True,
            n_threads=self.n_threads,
        )
        if feats is not None and feats.shape[1] != CHGNET_FEATURE_DIM:
            raise RuntimeError(
                f"CHGNet {self.model_name} gave {feats.shape[1]}-d crystal features, "
                f"expected {CHGNET_FEATURE_DIM}"
            )
        for k, i in enumerate(idx):
            if errs[k] is not None or feats is None:
                errors[i] = errs[k] or "CHGNet failed"
                continue
            values[i, :CHGNET_FEATURE_DIM] = feats[k]
            values[i, CHGNET_FEATURE_DIM] = energies[k]
        return values, errors
