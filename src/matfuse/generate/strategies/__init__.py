"""Search strategies for molecular design; all share :class:`Strategy` and the budgeted oracle."""

from matfuse.generate.strategies.base import BudgetedOracle, Convergence, Strategy, valid_seeds
from matfuse.generate.strategies.graph_ga import GraphGA
from matfuse.generate.strategies.latent import LatentCMAES, LatentInterpolate, LatentSample
from matfuse.generate.strategies.registry import STRATEGIES, register_strategy
from matfuse.generate.strategies.smc import SMCDecoderStrategy, SMCStrategy

__all__ = [
    "STRATEGIES",
    "BudgetedOracle",
    "Convergence",
    "GraphGA",
    "LatentCMAES",
    "LatentInterpolate",
    "LatentSample",
    "SMCDecoderStrategy",
    "SMCStrategy",
    "Strategy",
    "register_strategy",
    "valid_seeds",
]
