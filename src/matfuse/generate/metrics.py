"""Metrics for molecular generation: MOSES distribution metrics and PMO goal-directed metrics.

MOSES (Polykovskiy et al. 2020; definitions as in ``moses/metrics`` of molsets 0.3.1):

- validity: fraction of samples RDKit can parse; every other metric uses the valid ones;
- unique@k: fraction of distinct canonical SMILES among the first k valid samples;
- novelty: fraction of distinct valid samples absent from the training set;
- FCD: Fréchet distance between ChemNet penultimate activations (the ``fcd`` package's
  ChemNet; MOSES used its own PyTorch port of the same network);
- SNN: mean over samples of the max Tanimoto (Morgan r=2, 1024 bits) to the reference set;
- Frag / Scaf: cosine similarity of BRICS-fragment / Bemis–Murcko-scaffold count vectors
  (scaffolds with fewer than two rings are dropped, as MOSES does);
- IntDiv_p: 1 - (mean over all sample pairs, self-pairs included, of T^p)^(1/p);
- filters: fraction passing MOSES's filters — only C, N, S, O, F, Cl, Br, H atoms, no charges,
  no ring of 8 or more atoms, none of MOSES's 22 MCF SMARTS (reproduced verbatim below from
  ``moses/metrics/mcf.csv``) and no PAINS match. For PAINS we use RDKit's FilterCatalog PAINS
  (A/B/C, 480 patterns), which is the same Baell & Holloway set MOSES ships as
  ``wehi_pains.csv``; both are matched on the molecule with explicit hydrogens, as in MOSES.

Goal-directed (PMO, Gao et al. 2022): best score, top-k mean, and the area under the curve of
the running top-10 mean against the number of oracle calls, normalised by the budget, computed
every ``freq`` calls as in PMO's ``top_auc`` (a run that stops early is extended flat).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.rdBase import BlockLogs

from matfuse.chem.scaffolds import murcko_scaffold
from matfuse.chem.similarity import morgan_bitvect
from matfuse.chem.standardize import canonical_smiles, to_mol
from matfuse.generate.properties import pains_catalog

__all__ = [
    "MCF_SMARTS",
    "MosesReference",
    "fcd_statistics",
    "filter_pass_rate",
    "fragment_counts",
    "frechet_distance",
    "internal_diversities",
    "internal_diversity",
    "moses_metrics",
    "novelty",
    "passes_moses_filters",
    "scaffold_counts",
    "snn",
    "top_k_auc",
    "top_k_mean",
    "unique_at",
    "validity",
]

#: MOSES ``mcf.csv`` (medicinal chemistry filters), verbatim.
MCF_SMARTS = [
    "[#6]=&!@[#6]-[#6]#[#7]",
    "[#6]=&!@[#6]-[#16](=[#8])=[#8]",
    "[#6]=&!@[#6&!H0]-&!@[#6](=[#8])-&!@[#7]",
    "[H]C([H])([#6])[F,Cl,Br,I]",
    "[#6]1-[#8]-[#6]-1",
    "[#6]-[#7]=[#6]=[#8]",
    "[#6&!H0]=[#8]",
    "[#6](=&!@[#7&!H0])-&!@[#6,#7,#8,#16]",
    "[#6]1-[#7]-[#6]-1",
    "[#6]~&!@[#7]~&!@[#7]~&!@[#6]",
    "[#7]=&!@[#7]",
    "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#8]-1",
    "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#16]-1",
    "[#17,#35,#53]-c(:*):[!#1!#6]:*",
    "[H][#7]([H])-[#6]-1=[#6]-[#6]=[#6]-[#6]=[#6]-1",
    "[#16]~[#16]",
    "[#7]~&!@[#7]~&!@[#7]",
    "[#7]-&!@[#6&!H0&!H1]-&!@[#7]",
    "[#6&!H0](-&!@[#8])-&!@[#8]",
    "[#35].[#35].[#35]",
    "[#17].[#17].[#17].[#17]",
    "[#9].[#9].[#9].[#9].[#9].[#9].[#9]",
]
MOSES_ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
SNN_BITS = 1024


# -- helpers -----------------------------------------------------------------------------
def _canonical_valid(smiles: Sequence[str | None]) -> list[str]:
    out = []
    for s in smiles:
        c = canonical_smiles(to_mol(s)) if s else None
        if c is not None:
            out.append(c)
    return out


def _fps(smiles: Sequence[str], n_bits: int = SNN_BITS) -> list:
    fps = [morgan_bitvect(s, 2, n_bits) for s in smiles]
    return [f for f in fps if f is not None]


# -- MOSES metrics -----------------------------------------------------------------------
def validity(smiles: Sequence[str | None]) -> float:
    """Fraction of entries that parse as molecules (None and '' count as invalid)."""
    if not smiles:
        return 0.0
    return sum(1 for s in smiles if s and to_mol(s) is not None) / len(smiles)


def unique_at(valid_canonical: Sequence[str], k: int | None = None) -> float:
    """Fraction of distinct molecules among the first k valid canonical SMILES."""
    head = list(valid_canonical[:k] if k else valid_canonical)
    return len(set(head)) / len(head) if head else 0.0


def novelty(valid_canonical: Sequence[str], train: set[str] | Sequence[str]) -> float:
    """Fraction of distinct generated molecules not in the training set (canonical SMILES)."""
    distinct = set(valid_canonical)
    if not distinct:
        return 0.0
    train_set = train if isinstance(train, set) else set(train)
    return len(distinct - train_set) / len(distinct)


def snn(gen_fps: Sequence, ref_fps: Sequence) -> float:
    """Mean nearest-neighbour Tanimoto of generated to reference fingerprints."""
    if not gen_fps or not ref_fps:
        return float("nan")
    return float(np.mean([max(DataStructs.BulkTanimotoSimilarity(f, ref_fps)) for f in gen_fps]))


def internal_diversities(gen_fps: Sequence) -> tuple[float, float]:
    """(IntDiv1, IntDiv2) in one pass over all ordered pairs, self-pairs included (MOSES).

    IntDiv_p = 1 - (mean_{x,y} T(x, y)^p)^(1/p); one pass because the pairwise similarities
    are the expensive part (n^2 of them).
    """
    if not gen_fps:
        return float("nan"), float("nan")
    s1 = s2 = 0.0
    for f in gen_fps:
        sims = np.asarray(DataStructs.BulkTanimotoSimilarity(f, gen_fps))
        s1 += float(sims.sum())
        s2 += float((sims**2).sum())
    n2 = len(gen_fps) ** 2
    return float(1.0 - s1 / n2), float(1.0 - (s2 / n2) ** 0.5)


def internal_diversity(gen_fps: Sequence, p: int = 1) -> float:
    """1 - (mean_{x,y} T(x, y)^p)^(1/p) over all ordered pairs, self-pairs included (MOSES)."""
    if p in (1, 2):
        return internal_diversities(gen_fps)[p - 1]
    if not gen_fps:
        return float("nan")
    total = 0.0
    for f in gen_fps:
        total += float((np.asarray(DataStructs.BulkTanimotoSimilarity(f, gen_fps)) ** p).sum())
    return float(1.0 - (total / len(gen_fps) ** 2) ** (1.0 / p))


def fragment_counts(smiles: Sequence[str]) -> Counter:
    """BRICS fragment SMILES counted over the molecules (MOSES ``compute_fragments``)."""
    counts: Counter = Counter()
    block = BlockLogs()
    for s in smiles:
        mol = to_mol(s)
        if mol is not None:
            counts.update(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))
    del block
    return counts


def scaffold_counts(smiles: Sequence[str], min_rings: int = 2) -> Counter:
    """Murcko scaffolds with at least ``min_rings`` rings, counted (MOSES ``compute_scaffolds``)."""
    counts: Counter = Counter()
    for s in smiles:
        scaf = murcko_scaffold(s)
        if not scaf:
            continue
        mol = Chem.MolFromSmiles(scaf)
        if mol is not None and mol.GetRingInfo().NumRings() >= min_rings:
            counts[scaf] += 1
    return counts


def cosine_similarity(a: Counter, b: Counter) -> float:
    if not a or not b:
        return float("nan")
    keys = sorted(set(a) | set(b))
    va = np.array([a.get(k, 0) for k in keys], dtype=float)
    vb = np.array([b.get(k, 0) for k in keys], dtype=float)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


@lru_cache(maxsize=1)
def _mcf_patterns() -> list[Chem.Mol]:
    return [Chem.MolFromSmarts(s) for s in MCF_SMARTS]


def passes_moses_filters(smiles_or_mol: str | Chem.Mol) -> bool:
    """MOSES ``mol_passes_filters``: allowed atoms, neutral, rings < 8, no MCF/PAINS alert."""
    mol = to_mol(smiles_or_mol)
    if mol is None:
        return False
    rings = mol.GetRingInfo().AtomRings()
    if any(len(r) >= 8 for r in rings):
        return False
    if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
        return False
    if any(a.GetSymbol() not in MOSES_ALLOWED_ATOMS for a in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(p) for p in _mcf_patterns()):
        return False
    return not pains_catalog().HasMatch(with_h)


def filter_pass_rate(smiles: Sequence[str]) -> float:
    return float(np.mean([passes_moses_filters(s) for s in smiles])) if smiles else float("nan")


# -- FCD ---------------------------------------------------------------------------------
def fcd_statistics(smiles: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ChemNet penultimate activations (the FCD's Gaussian)."""
    import warnings

    import fcd

    from matfuse.encoders.chemnet import load_chemnet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acts = fcd.get_predictions(load_chemnet(), list(smiles), batch_size=batch_size, n_jobs=0)
    acts = acts[~np.isnan(acts).any(axis=1)]
    return acts.mean(axis=0), np.cov(acts, rowvar=False)


def frechet_distance(
    stats_a: tuple[np.ndarray, np.ndarray], stats_b: tuple[np.ndarray, np.ndarray]
) -> float:
    import fcd

    return float(fcd.calculate_frechet_distance(stats_a[0], stats_a[1], stats_b[0], stats_b[1]))


class MosesReference:
    """Precomputed statistics of a reference set (test or scaffold test), reused across models."""

    def __init__(self, smiles: Sequence[str], with_fcd: bool = True) -> None:
        self.smiles = _canonical_valid(smiles)
        self.fps = _fps(self.smiles)
        self.fragments = fragment_counts(self.smiles)
        self.scaffolds = scaffold_counts(self.smiles)
        self.fcd_stats = fcd_statistics(self.smiles) if with_fcd else None


def moses_metrics(
    generated: Sequence[str | None],
    train: set[str] | Sequence[str],
    references: dict[str, MosesReference],
    with_fcd: bool = True,
    snn_sample: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """The MOSES table row for one generator (``references`` e.g. {"Test": ..., "TestSF": ...}).

    ``snn_sample`` estimates SNN on a random subset of the generated molecules against the
    *full* reference set: SNN is a mean over generated molecules, so the estimate is unbiased
    (standard error about 0.1 / sqrt(n)), while 30k x 176k Tanimoto pairs would take many
    minutes per reference on one CPU core.
    """
    out: dict[str, float] = {"n": float(len(generated)), "valid": validity(generated)}
    valid = _canonical_valid(generated)
    out["unique@1k"] = unique_at(valid, 1000)
    out["unique@10k"] = unique_at(valid, 10000)
    gen_fps = _fps(valid)
    snn_fps = gen_fps
    if snn_sample is not None and len(gen_fps) > snn_sample:
        idx = np.random.default_rng(seed).choice(len(gen_fps), snn_sample, replace=False)
        snn_fps = [gen_fps[i] for i in sorted(idx)]
    gen_frag = fragment_counts(valid)
    gen_scaf = scaffold_counts(valid)
    gen_stats = fcd_statistics(valid) if with_fcd and valid else None
    for name, ref in references.items():
        if gen_stats is not None and ref.fcd_stats is not None:
            out[f"FCD/{name}"] = frechet_distance(gen_stats, ref.fcd_stats)
        out[f"SNN/{name}"] = snn(snn_fps, ref.fps)
        out[f"Frag/{name}"] = cosine_similarity(gen_frag, ref.fragments)
        out[f"Scaf/{name}"] = cosine_similarity(gen_scaf, ref.scaffolds)
    out["IntDiv"], out["IntDiv2"] = internal_diversities(gen_fps)
    out["Filters"] = filter_pass_rate(valid)
    out["Novelty"] = novelty(valid, train)
    return out


# -- goal-directed (PMO) -----------------------------------------------------------------
def top_k_mean(scores: Sequence[float] | np.ndarray, k: int = 10) -> float:
    """Mean of the k best scores (of all there are, if fewer than k)."""
    values = np.sort(np.asarray(scores, dtype=float))[::-1][:k]
    return float(values.mean()) if len(values) else 0.0


def top_k_auc(history: Sequence[float], budget: int, k: int = 10, freq: int = 100) -> float:
    """Area under the running top-k mean vs oracle calls, divided by the budget (PMO).

    ``history`` is the score of each oracle call in call order. Checkpoints every ``freq``
    calls, trapezoidal rule between them, and a run that ended before the budget keeps its
    final top-k mean for the calls it did not make.
    """
    scores = np.asarray(history, dtype=float)[:budget]
    n = len(scores)
    if n == 0:
        return 0.0
    total, prev, called = 0.0, 0.0, 0
    for idx in range(freq, min(n, budget), freq):
        now = top_k_mean(scores[:idx], k)
        total += freq * (now + prev) / 2
        prev, called = now, idx
    now = top_k_mean(scores, k)
    total += (n - called) * (now + prev) / 2
    if n < budget:
        total += (budget - n) * now
    return float(total / budget)
