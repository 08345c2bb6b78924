"""What every search strategy shares: a budgeted, caching oracle and a seeded base class.

The oracle follows the PMO protocol (Gao et al. 2022): the budget counts *distinct valid*
molecules scored; asking again for a molecule already scored returns the cached score for free,
and invalid strings score 0 without using budget. Because a strategy that only proposes
duplicates would then loop forever, the oracle also stops after ``max_proposals`` proposals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from matfuse.chem.standardize import canonical_smiles, quiet_rdkit, to_mol

__all__ = [
    "BudgetedOracle",
    "Convergence",
    "ProgressCallback",
    "ScoreFunction",
    "Strategy",
    "valid_seeds",
]

ProgressCallback = Callable[[int, float, str], None]
#: scores a batch of canonical SMILES: an array, or a table with a ``score`` column
ScoreFunction = Callable[[list[str]], "np.ndarray | pd.DataFrame"]


class BudgetedOracle:
    """Scores molecules, counting distinct valid ones against a budget and caching scores.

    A candidate of several disconnected fragments (``CNc1ccccc1.Cl.Cl``) is rejected with score
    0 and counted in ``n_multi_fragment``, never scored: adding counter-ions or solvent is the
    cheapest way to game QED or a descriptor model, and it is not a new molecule. Pass
    ``allow_fragments=True`` when salts are what is being designed.
    """

    def __init__(
        self,
        score_fn: ScoreFunction,
        budget: int,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        max_proposals: int | None = None,
        allow_fragments: bool = False,
    ) -> None:
        if budget < 1:
            raise ValueError(f"budget must be a positive number of oracle calls, got {budget}")
        self.score_fn = score_fn
        self.budget = int(budget)
        self.on_progress = on_progress
        self.progress_every = max(1, int(progress_every))
        self.max_proposals = max_proposals if max_proposals is not None else 50 * budget + 1000
        self.scores: dict[str, float] = {}
        self.records: list[dict[str, Any]] = []  # one per scored molecule, in call order
        self.n_proposed = 0
        self.n_invalid = 0
        self.n_multi_fragment = 0
        self.allow_fragments = allow_fragments
        self.best_score = -np.inf
        self.best_smiles = ""
        self._last_report = 0

    # -- state ----------------------------------------------------------------------
    @property
    def n_calls(self) -> int:
        return len(self.scores)

    @property
    def remaining(self) -> int:
        return self.budget - self.n_calls

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0 or self.n_proposed >= self.max_proposals

    def top_scores(self, k: int) -> np.ndarray:
        """The ``k`` best scores so far, best first (PMO's convergence test compares them)."""
        return np.sort(np.fromiter(self.scores.values(), dtype=float))[::-1][:k]

    @property
    def history(self) -> list[float]:
        """Scores in the order the oracle was called (what the PMO AUC is computed on)."""
        return [r["score"] for r in self.records]

    # -- scoring --------------------------------------------------------------------
    def __call__(self, smiles: Sequence[str | None]) -> np.ndarray:
        """Scores aligned with ``smiles``; NaN for new molecules beyond the budget."""
        out = np.full(len(smiles), np.nan)
        new: dict[str, list[int]] = {}
        with quiet_rdkit():
            canon = [canonical_smiles(to_mol(s)) if s else None for s in smiles]
        for i, c in enumerate(canon):
            self.n_proposed += 1
            if c is None:
                self.n_invalid += 1
                out[i] = 0.0
            elif "." in c and not self.allow_fragments:
                self.n_multi_fragment += 1
                out[i] = 0.0
            elif c in self.scores:
                out[i] = self.scores[c]
            elif c in new:
                new[c].append(i)
            elif len(new) < self.remaining:
                new[c] = [i]
        if new:
            keys = list(new)
            result = self.score_fn(keys)
            if isinstance(result, pd.DataFrame):
                rows = result.to_dict("records")
                values = result["score"].to_numpy(dtype=float)
            else:
                values = np.asarray(result, dtype=float)
                rows = [{"score": v} for v in values]
            for key, value, row in zip(keys, values, rows, strict=True):
                value = float(np.nan_to_num(value, nan=0.0))
                self.scores[key] = value
                self.records.append({**row, "smiles": key, "score": value, "call": self.n_calls})
                for i in new[key]:
                    out[i] = value
                if value > self.best_score:
                    self.best_score, self.best_smiles = value, key
                self._maybe_report()
        return out

    def _maybe_report(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        if force or self.n_calls - self._last_report >= self.progress_every:
            self._last_report = self.n_calls
            self.on_progress(self.n_calls, float(max(self.best_score, 0.0)), self.best_smiles)

    def finish(self) -> None:
        """Report the final state to the progress callback."""
        self._maybe_report(force=True)

    def table(self) -> pd.DataFrame:
        """Every scored molecule with its record, in call order."""
        return pd.DataFrame.from_records(self.records)


class Convergence:
    """PMO's stop for population methods (mol_opt ``graph_ga/run.py``): once more than
    ``min_calls`` molecules are scored, a generation that lifts the mean of the ``top`` best
    scores by less than ``tol`` is a stalled one, and ``patience`` stalled generations in a row
    end the run. PMO's AUC then pads the curve with the final top-k up to the budget, so a run
    that has really converged loses nothing and saves the time it would spend repeating itself
    (one that would still have improved loses that gain). ``patience=None`` never stops.
    """

    def __init__(
        self, patience: int | None, top: int = 100, min_calls: int = 100, tol: float = 1e-3
    ) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be a positive number of steps or None, got {patience}")
        self.patience, self.top, self.min_calls, self.tol = patience, top, min_calls, tol
        self.stalled = 0
        self._last: float | None = None

    def __call__(self, oracle: BudgetedOracle) -> bool:
        """Record one finished generation; True when the run has converged."""
        if self.patience is None or oracle.n_calls <= self.min_calls:
            self._last = None  # as in PMO: before min_calls the previous mean counts as 0
            return False
        mean = float(oracle.top_scores(self.top).mean())
        gained = mean - self._last if self._last is not None else np.inf
        self._last = mean
        self.stalled = self.stalled + 1 if gained < self.tol else 0
        return self.stalled >= self.patience


def _as_numpy(x: Any) -> np.ndarray:
    """float64 numpy array from a torch tensor or array-like (latent statistics)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def valid_seeds(smiles: Sequence[Any] | None) -> tuple[list[str], list[str]]:
    """Canonical valid seeds and the rejected inputs (invalid seeds are reported, not fatal)."""
    good: list[str] = []
    bad: list[str] = []
    seen: set[str] = set()
    with quiet_rdkit():
        for s in smiles or []:
            c = canonical_smiles(to_mol(s))
            if c is None:
                bad.append(str(s))
            elif c not in seen:
                seen.add(c)
                good.append(c)
    return good, bad


class Strategy(ABC):
    """A search strategy: proposes molecules and asks the oracle until the budget is spent.

    ``initial`` seeds the search (invalid entries are skipped and listed in
    ``self.rejected_seeds``); ``corpus`` is the set of molecules a strategy may draw starting
    points or a language prior from. Randomness flows only from ``seed`` through
    ``self.rng``, so the same seed reproduces the same run.
    """

    name: ClassVar[str] = "strategy"
    uses_corpus: ClassVar[bool] = False

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
    ) -> None:
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.initial, self.rejected_seeds = valid_seeds(initial)
        self.corpus = list(corpus) if corpus is not None else None

    def run(self, oracle: BudgetedOracle) -> BudgetedOracle:
        """Search until the oracle's budget is used (or no new molecule can be found)."""
        self.search(oracle)
        oracle.finish()
        return oracle

    @abstractmethod
    def search(self, oracle: BudgetedOracle) -> None:
        """The strategy's loop; must stop when ``oracle.exhausted``."""

    def corpus_sample(self, n: int) -> list[str]:
        """``n`` distinct molecules drawn from the corpus with this strategy's RNG."""
        from matfuse.generate.corpus import default_corpus

        corpus = self.corpus if self.corpus is not None else default_corpus()
        if not corpus:
            return []
        idx = self.rng.choice(len(corpus), size=min(n, len(corpus)), replace=False)
        return [corpus[i] for i in sorted(idx)]
