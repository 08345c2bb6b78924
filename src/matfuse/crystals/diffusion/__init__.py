"""A learned crystal generator: periodic flow matching over lattice, fractional coordinates
and (de novo) atom types.

The DiffCSP / MatterGen family. One network serves both modes: crystal structure prediction
(CSP: the composition is given, the lattice and the atom positions are generated) and de novo
generation (the atom count is drawn from the training distribution and the elements are
generated too, by masked discrete flow matching), optionally steered towards scalar
properties by classifier-free guidance. Plain PyTorch, small enough to train on a CPU, and
ready for a GPU (``device="cuda"``), ``torchrun`` data parallelism and bigger tables (MP-20,
Alex-MP-20: any table with a ``cif`` column).

- :mod:`~matfuse.crystals.diffusion.lattice`: the six lattice parameters as a flat,
  normalised vector, and back to a lattice matrix (differentiable).
- :mod:`~matfuse.crystals.diffusion.data`: CIF table -> padded-free crystal batches, bad rows
  flagged with a reason.
- :mod:`~matfuse.crystals.diffusion.model`: the periodic, E(3)-invariant denoiser (CSPNet-like).
- :mod:`~matfuse.crystals.diffusion.flow`: the flow-matching path, its loss and the ODE sampler.
- :mod:`~matfuse.crystals.diffusion.persistence`: model directories (JSON + safetensors) and
  the registered names of shipped models (``perov5``).
- :mod:`~matfuse.crystals.diffusion.training`: the resumable training loop.
- :mod:`~matfuse.crystals.diffusion.conditions`: property targets and their standardisation.
- :mod:`~matfuse.crystals.diffusion.sampling`: CSP and de novo sampling, pymatgen ``Structure``
  out.
- :mod:`~matfuse.crystals.diffusion.evaluation`: de novo metrics (validity, COV, Wasserstein)
  and an independent property judge.
- :mod:`~matfuse.crystals.diffusion.generator`: the ``diffusion`` candidate generator of
  ``matfuse csp``.

Nothing is imported here, so that ``import matfuse.crystals`` stays free of torch.
"""
