"""The ``clm_loglik`` objective term: how likely our chemical language model finds a molecule.

An "in distribution" score: the exact log-likelihood log p(canonical SMILES) under a
:class:`~matfuse.foundation.clm.ChemicalLanguageModel` (the shipped ``clm`` by default),
summed over tokens or, with ``per_token: true``, averaged (which does not penalise size).
As an objective term it keeps a search near drug-like chemistry the model was trained on::

    - property: clm_loglik
      goal: maximize          # default ramp: worst -60, best -20 nats (per token: -3 .. -0.5)
      model: clm              # or a model directory
      weight: 0.5

Torch and the model load when the term is first built, not when objectives are imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from rdkit import Chem

from matfuse.generate.objectives import SpecError, Term, TermResult, TermSpec, register_term

if TYPE_CHECKING:
    from collections.abc import Callable

    from matfuse.foundation.clm import ChemicalLanguageModel

__all__ = ["CLMLogLikelihoodTerm", "clm_log_likelihoods"]

logger = logging.getLogger(__name__)

#: default [worst, best] ramps for ``goal: maximize`` (nats per molecule, nats per token)
DEFAULT_SCALE = (-60.0, -20.0)
DEFAULT_SCALE_PER_TOKEN = (-3.0, -0.5)
_MODELS: dict[str, ChemicalLanguageModel] = {}


def _model(name_or_path: str) -> ChemicalLanguageModel:
    """One loaded copy per process: a search builds its objective once per run."""
    if name_or_path not in _MODELS:
        from matfuse.foundation.clm import load_clm

        _MODELS[name_or_path] = load_clm(name_or_path)
    return _MODELS[name_or_path]


def clm_log_likelihoods(
    model: ChemicalLanguageModel,
    smiles: list[str],
    per_token: bool = False,
    batch_size: int = 512,
) -> np.ndarray:
    """log p of each SMILES (``-inf`` where the vocabulary cannot spell it), as floats."""
    import torch

    out: list[np.ndarray] = []
    with torch.no_grad():
        for i in range(0, len(smiles), batch_size):
            chunk = smiles[i : i + batch_size]
            ll = model.log_likelihood(chunk).cpu().numpy().astype(float)
            if per_token:
                lengths = np.array(
                    [len(ids) - 1 if (ids := model.token_ids(s)) else 1 for s in chunk]
                )
                ll = ll / lengths
            out.append(ll)
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class CLMLogLikelihoodTerm(Term):
    """log p(S) of the language model, ramped to a desirability in [0, 1] by the goal."""

    model: str = "clm"
    per_token: bool = False
    modifier: Callable[[np.ndarray], np.ndarray] = field(default=lambda x: x)

    def __post_init__(self) -> None:
        try:
            self._lm = _model(self.model)
        except (FileNotFoundError, ValueError, OSError) as err:
            raise SpecError(
                f"term {self.name!r}: cannot load language model {self.model!r}: {err}"
            ) from err

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        smiles = [Chem.MolToSmiles(m) for m in mols]
        raw = clm_log_likelihoods(self._lm, smiles, self.per_token)
        finite = np.where(np.isfinite(raw), raw, np.nan)
        desirability = np.nan_to_num(self.modifier(finite), nan=0.0)
        return TermResult(raw, np.clip(desirability, 0.0, 1.0))


def _clm_term(t: TermSpec) -> Term:
    model: Any = t.spec.get("model", "clm")
    if not isinstance(model, str):
        raise SpecError(f"term {t.name!r}: model must be a name (clm) or a directory")
    per_token = t.spec.get("per_token", False)
    if not isinstance(per_token, bool):
        raise SpecError(f"term {t.name!r}: per_token must be true or false")
    scale = DEFAULT_SCALE_PER_TOKEN if per_token else DEFAULT_SCALE
    return CLMLogLikelihoodTerm(
        t.name, t.weight, model=model, per_token=per_token, modifier=t.modifier(scale)
    )


register_term(
    "clm_loglik",
    _clm_term,
    keys={"model", "per_token"},
    description="log-likelihood of the molecule under the chemical language model (clm)",
    tags={"model", "language-model", "in-distribution"},
)
