"""The registry of search strategies, read by :func:`matfuse.generate.generate`, the CLI's
``--strategy`` and ``matfuse strategies``, and the web UI's strategy dropdown.

Tags say what a strategy needs and what it is: ``needs-decoder`` (our pretrained
encoder-decoder, ``selfies-ted`` by default, must be available), ``latent`` (it searches a
latent space), ``uses-corpus`` (it draws starting points or a prior from the corpus),
``classical`` (no neural network at all), ``bayesian`` (sequential Monte Carlo).
"""

from __future__ import annotations

from collections.abc import Iterable

from matfuse.generate.strategies.base import Strategy
from matfuse.generate.strategies.genetic_lm import GeneticLanguageModel
from matfuse.generate.strategies.graph_ga import GraphGA
from matfuse.generate.strategies.latent import LatentCMAES, LatentInterpolate, LatentSample
from matfuse.generate.strategies.lm_ga import LanguageModelGA
from matfuse.generate.strategies.reinvent import AugmentedMemory, Reinvent
from matfuse.generate.strategies.smc import SMCDecoderStrategy, SMCStrategy
from matfuse.registry import Registry

__all__ = ["STRATEGIES", "register_strategy"]

#: Every search strategy class by its ``name``.
STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register_strategy(
    cls: type[Strategy],
    *,
    description: str = "",
    tags: Iterable[str] = (),
    overwrite: bool = False,
) -> type[Strategy]:
    """Add a strategy class to :data:`STRATEGIES` under its ``name``.

    The description defaults to the class's ``description`` attribute, else the first line of
    its docstring (without reST markup); ``uses-corpus`` is added to the tags when the class
    says so.
    """
    doc = (cls.__doc__ or "").strip().splitlines()
    first = doc[0].rstrip(".").replace("``", "") if doc else ""
    text = description or getattr(cls, "description", "") or first
    found = set(tags) | ({"uses-corpus"} if cls.uses_corpus else set())
    STRATEGIES.add(cls.name, cls, description=text, tags=found, overwrite=overwrite)
    return cls


register_strategy(GraphGA, tags={"classical", "mutation"})
register_strategy(SMCStrategy, tags={"bayesian", "classical"})
register_strategy(SMCDecoderStrategy, tags={"bayesian", "latent", "needs-decoder"})
register_strategy(LatentCMAES, tags={"latent", "needs-decoder", "optimiser"})
register_strategy(LatentInterpolate, tags={"latent", "needs-decoder"})
register_strategy(LatentSample, tags={"latent", "needs-decoder", "baseline"})
register_strategy(Reinvent, tags={"language-model", "reinforcement-learning"})
register_strategy(AugmentedMemory, tags={"language-model", "reinforcement-learning"})
register_strategy(LanguageModelGA, tags={"language-model", "mutation"})
register_strategy(
    GeneticLanguageModel, tags={"language-model", "reinforcement-learning", "mutation"}
)
