"""RDKit-computable molecular properties used by objectives and benchmarks.

One registry of name -> function (:data:`PROPERTIES`) so that an objective spec, the GuacaMol
tasks, the candidate table, ``matfuse properties`` and the web UI all compute and list "logP" or
"SA score" the same way. Tags: ``rdkit`` (all built-ins), ``cheap`` (a descriptor or count,
microseconds per molecule), ``count`` (an integer count), ``size``, ``drug-likeness``,
``synthesis``, ``filter`` (substructure alerts). SA score is Ertl & Schuffenhauer's, from
RDKit's Contrib directory (loaded lazily: it reads its fragment table on first use).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from rdkit import Chem
from rdkit.Chem import (
    QED,
    Crippen,
    Descriptors,
    FilterCatalog,
    RDConfig,
    rdMolDescriptors,
)

from matfuse.registry import Registry

__all__ = [
    "PROPERTIES",
    "MolProperty",
    "compute_property",
    "pains_catalog",
    "register_property",
    "sa_score",
]

#: a property: a function of an RDKit ``Mol`` returning a number
MolProperty = Callable[[Chem.Mol], float]


@lru_cache(maxsize=1)
def _sascorer() -> Any:
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.exists(path):  # pragma: no cover - depends on the RDKit build
        raise RuntimeError(f"RDKit's SA score module is missing ({path})")
    spec = importlib.util.spec_from_file_location("matfuse_sascorer", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def sa_score(mol: Chem.Mol) -> float:
    """Synthetic accessibility, 1 (easy) to 10 (hard)."""
    return float(_sascorer().calculateScore(mol))


@lru_cache(maxsize=1)
def pains_catalog() -> FilterCatalog.FilterCatalog:
    """RDKit's PAINS catalogue (families A, B and C: 480 patterns, Baell & Holloway 2010)."""
    params = FilterCatalog.FilterCatalogParams()
    params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
    return FilterCatalog.FilterCatalog(params)


def _max_ring_size(mol: Chem.Mol) -> float:
    rings = mol.GetRingInfo().AtomRings()
    return float(max((len(r) for r in rings), default=0))


def _pains_alerts(mol: Chem.Mol) -> float:
    return float(len(pains_catalog().GetMatches(mol)))


#: Every molecular property an objective term can name (``property: logp``).
PROPERTIES: Registry[MolProperty] = Registry("property")


def register_property(
    name: str,
    fn: MolProperty,
    description: str,
    tags: Iterable[str] = (),
    overwrite: bool = False,
) -> MolProperty:
    """Make ``fn`` (a function of an RDKit ``Mol``) usable as ``property: <name>``."""
    PROPERTIES.add(name, fn, description=description, tags=tags, overwrite=overwrite)
    return fn


_CHEAP = {"rdkit", "cheap"}
_COUNT = {"rdkit", "cheap", "count"}
register_property(
    "qed", QED.qed, "quantitative estimate of drug-likeness, 0..1", {"rdkit", "drug-likeness"}
)
# rdkit-stubs omit the descriptors RDKit defines as module-level lambdas (MolLogP, MolWt)
register_property("logp", Crippen.MolLogP, "Crippen logP", _CHEAP)  # type: ignore[attr-defined]
register_property("tpsa", rdMolDescriptors.CalcTPSA, "topological polar surface area, Å²", _CHEAP)
register_property(
    "sa", sa_score, "synthetic accessibility score, 1 (easy) .. 10 (hard)", {"rdkit", "synthesis"}
)
register_property(
    "mw",
    Descriptors.MolWt,  # type: ignore[attr-defined]
    "molecular weight, g/mol",
    _CHEAP | {"size"},
)
register_property(
    "heavy_atoms",
    lambda m: float(m.GetNumHeavyAtoms()),
    "number of heavy atoms",
    _COUNT | {"size"},
)
register_property(
    "rings", lambda m: float(rdMolDescriptors.CalcNumRings(m)), "number of rings", _COUNT
)
register_property(
    "aromatic_rings",
    lambda m: float(rdMolDescriptors.CalcNumAromaticRings(m)),
    "number of aromatic rings",
    _COUNT,
)
register_property(
    "max_ring_size", _max_ring_size, "size of the largest ring (0 if acyclic)", _COUNT
)
register_property(
    "hbd", lambda m: float(rdMolDescriptors.CalcNumHBD(m)), "hydrogen-bond donors", _COUNT
)
register_property(
    "hba", lambda m: float(rdMolDescriptors.CalcNumHBA(m)), "hydrogen-bond acceptors", _COUNT
)
register_property(
    "rotatable_bonds",
    lambda m: float(rdMolDescriptors.CalcNumRotatableBonds(m)),
    "rotatable bonds",
    _COUNT,
)
register_property(
    "pains_alerts", _pains_alerts, "number of PAINS substructure alerts", {"rdkit", "filter"}
)


def compute_property(name: str, mol: Chem.Mol) -> float:
    """One property of one molecule; NaN if RDKit fails on it (never raises for a bad mol).

    An unknown ``name`` raises :class:`~matfuse.registry.UnknownNameError` listing the choices.
    """
    fn = PROPERTIES.get(name)
    try:
        return float(fn(mol))
    except Exception:  # RDKit raises several private types on odd valences
        return float("nan")
