"""The ``diffusion`` candidate generator: the learned crystal generator inside ``matfuse csp``.

Its candidates go through the same relax -> hull -> rank path as ``random`` and
``substitution`` (:mod:`matfuse.crystals.search`). Candidates come in blocks of
``block_size`` sampled together; block ``b`` is seeded by ``(seed, b)``, so the stream is a
pure function of the arguments, as resuming a search requires.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

from pymatgen.core import Composition

from matfuse.crystals.generators import DEFAULT_MAX_ATOMS, Candidate, CandidateGenerator

logger = logging.getLogger(__name__)

__all__ = ["DiffusionGenerator"]


class DiffusionGenerator(CandidateGenerator):
    """Structures sampled from a trained crystal flow model (CSP mode: composition given).

    The cell size cycles over the formula-unit counts ``z`` whose atom count the model saw
    in training (the smallest ``z`` when none fits): a perov_5 model is asked for 5-atom
    cells of ABX3 only.
    """

    name = "diffusion"
    description = "learned crystal generator (periodic flow matching, CSP mode; model perov5)"
    default_model = "perov5"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        model: str | Path | None = None,
        block_size: int = 16,
        steps: int | None = None,
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        from matfuse.crystals.diffusion.persistence import resolve_model_path

        self.model = str(model or self.default_model)
        resolve_model_path(self.model)  # fail now, before any relaxation
        self.block_size = int(block_size)
        self.steps = steps

    def _z_values(self, seen: int) -> list[int]:
        n = int(self.composition.num_atoms)
        fits = [z for z in range(self.z[0], self.z[1] + 1) if seen and n * z <= seen]
        return fits or [self.z[0]]

    def candidates(self) -> Iterator[Candidate]:
        from matfuse.crystals.diffusion.sampling import generate_structures, get_model

        flow = get_model(self.model)
        zs = self._z_values(flow.max_atoms)
        for block in itertools.count():
            z = zs[block % len(zs)]
            cells = generate_structures(
                flow,
                self.composition,
                n=self.block_size,
                seed=self.seed * 1_000_003 + block,
                z=z,
                steps=self.steps,
            )
            for k, cell in enumerate(cells):
                yield Candidate(cell, f"diffusion:{flow.name}:Z={z}:{block * self.block_size + k}")


def _register() -> None:
    from matfuse.crystals.generators import GENERATORS, register_generator

    if DiffusionGenerator.name not in GENERATORS:
        register_generator(DiffusionGenerator, {"learned", "diffusion"})


_register()
