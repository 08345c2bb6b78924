"""RDKit-computable molecular properties used by objectives and benchmarks.

One table of name -> function so that an objective spec, the GuacaMol tasks and the candidate
table all compute "logP" or "SA score" the same way. SA score is Ertl & Schuffenhauer's, from
RDKit's Contrib directory (loaded lazily: it reads its fragment table on first use).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
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

__all__ = ["PROPERTIES", "compute_property", "pains_catalog", "sa_score"]


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


#: name -> (function of an RDKit Mol, short description)
PROPERTIES: dict[str, tuple[Callable[[Chem.Mol], float], str]] = {
    "qed": (QED.qed, "quantitative estimate of drug-likeness, 0..1"),
    # rdkit-stubs omit the descriptors RDKit defines as module-level lambdas (MolLogP, MolWt)
    "logp": (Crippen.MolLogP, "Crippen logP"),  # type: ignore[attr-defined]
    "tpsa": (rdMolDescriptors.CalcTPSA, "topological polar surface area, Å²"),
    "sa": (sa_score, "synthetic accessibility score, 1 (easy) .. 10 (hard)"),
    "mw": (Descriptors.MolWt, "molecular weight, g/mol"),  # type: ignore[attr-defined]
    "heavy_atoms": (lambda m: float(m.GetNumHeavyAtoms()), "number of heavy atoms"),
    "rings": (lambda m: float(rdMolDescriptors.CalcNumRings(m)), "number of rings"),
    "aromatic_rings": (
        lambda m: float(rdMolDescriptors.CalcNumAromaticRings(m)),
        "number of aromatic rings",
    ),
    "max_ring_size": (_max_ring_size, "size of the largest ring (0 if acyclic)"),
    "hbd": (lambda m: float(rdMolDescriptors.CalcNumHBD(m)), "hydrogen-bond donors"),
    "hba": (lambda m: float(rdMolDescriptors.CalcNumHBA(m)), "hydrogen-bond acceptors"),
    "rotatable_bonds": (
        lambda m: float(rdMolDescriptors.CalcNumRotatableBonds(m)),
        "rotatable bonds",
    ),
    "pains_alerts": (_pains_alerts, "number of PAINS substructure alerts"),
}


def compute_property(name: str, mol: Chem.Mol) -> float:
    """One property of one molecule; NaN if RDKit fails on it (never raises for a bad mol)."""
    fn = PROPERTIES[name][0]
    try:
        return float(fn(mol))
    except Exception:  # RDKit raises several private types on odd valences
        return float("nan")
