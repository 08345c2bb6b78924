"""Crystal generator model directories (JSON + safetensors, never a pickle) and shipped names.

A model directory holds ``config.json`` (architecture, lattice standardisation, sampling
defaults, training facts), ``model.safetensors`` (the EMA weights of the denoiser),
``manifest.json`` (size and sha256 of each file, checked before loading: see
:mod:`matfuse.models.manifest`) and ``MODEL_CARD.md`` (documentation, outside the manifest).
A training run's ``--out DIR`` holds its model directory in ``DIR/model``; either path loads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from matfuse.crystals.diffusion.conditions import ConditionScaler
from matfuse.crystals.diffusion.lattice import LatticeScaler
from matfuse.crystals.diffusion.model import DenoiserConfig, PeriodicDenoiser
from matfuse.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "CRYSTAL_MODELS",
    "CrystalFlowModel",
    "export_crystal_model",
    "load_crystal_model",
    "resolve_model_path",
    "save_crystal_model",
]

FORMAT_VERSION = 1
MODEL_KIND = "matfuse.crystals.diffusion.CrystalFlow"
_OWNED = frozenset({"config.json", "model.safetensors", "MODEL_CARD.md"})
_UNLISTED = frozenset({"MODEL_CARD.md"})


def _shipped(name: str) -> Path:
    from matfuse.foundation.weights import weights_dir

    return weights_dir(name)


#: Shipped crystal generators by name (``--model perov5``): the name maps to its weights folder.
CRYSTAL_MODELS: Registry[str] = Registry("crystal generator model")
CRYSTAL_MODELS.add(
    "perov5",
    "perov5",
    description="flow-matching crystal generator trained on perov_5 (val split) on a CPU: "
    "CSP and de novo in one model, classifier-free guidance on heat_ref",
    tags={"crystal", "csp", "de-novo", "pretrained"},
)


@dataclass
class CrystalFlowModel:
    """A loaded generator: the denoiser, how lattices are standardised, sampling defaults."""

    denoiser: PeriodicDenoiser
    scaler: LatticeScaler
    name: str = "crystal-flow"
    sampling: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    conditions: ConditionScaler | None = None

    @property
    def de_novo(self) -> bool:
        """Whether the model generates atom types (else it is CSP only)."""
        return bool(self.denoiser.config.type_head)

    @property
    def atom_counts(self) -> dict[int, int]:
        """Training cells per atom count (what de novo sampling draws the cell size from)."""
        return {int(k): int(v) for k, v in (self.meta.get("atom_counts") or {}).items()}

    @property
    def max_atoms(self) -> int:
        """The largest cell seen in training (bigger cells are extrapolation)."""
        return int(self.meta.get("max_atoms_seen") or 0)

    @property
    def elements(self) -> list[str]:
        return list(self.meta.get("elements_seen") or [])


def save_crystal_model(model: CrystalFlowModel, out: str | Path) -> Path:
    """Write ``out`` as a model directory, atomically (a kill leaves the old or the new one)."""
    from matfuse.foundation.model_dir import state_tensors
    from matfuse.models.manifest import atomic_directory

    config = {
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "architecture": model.denoiser.config.to_dict(),
        "lattice_scaler": {"mean": model.scaler.mean, "std": model.scaler.std},
        "sampling": model.sampling,
        "meta": model.meta,
    }
    if model.conditions is not None:
        config["conditions"] = asdict(model.conditions)
    with atomic_directory(out, MODEL_KIND, owns=_OWNED.__contains__, ignore=_UNLISTED) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_file(state_tensors(model.denoiser), tmp / "model.safetensors")
    return Path(out)


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A registered name (``perov5``), a model directory, or a training ``--out`` directory.

    ``ValueError`` (one line) when it is none of those.
    """
    text = str(name_or_path)
    path = Path(text)
    if not path.exists() and text in CRYSTAL_MODELS:
        path = _shipped(CRYSTAL_MODELS.get(text))
        if not (path / "config.json").exists():
            raise ValueError(f"model {text!r} is registered but its weights are missing at {path}")
        return path
    if (path / "model" / "config.json").exists():
        return path / "model"
    if (path / "config.json").exists():
        return path
    raise ValueError(
        f"unknown crystal model {text!r}: give a registered name "
        f"({', '.join(CRYSTAL_MODELS.names())}) or a model directory"
    )


def load_crystal_model(name_or_path: str | Path, device: str = "cpu") -> CrystalFlowModel:
    """Load a model directory after checking its manifest (see :func:`resolve_model_path`)."""
    from matfuse.models.manifest import verify_manifest

    path = resolve_model_path(name_or_path)
    manifest = verify_manifest(path, MODEL_KIND, ignore=_UNLISTED)
    config = manifest.read_json("config.json")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: model format {config['format_version']} is newer than this matfuse"
        )
    denoiser = PeriodicDenoiser(DenoiserConfig(**config["architecture"]))
    tensors = load_safetensors(manifest.read_bytes("model.safetensors"))
    denoiser.load_state_dict({k: v.to(device) for k, v in tensors.items()})
    denoiser.to(device).eval()
    scaler = LatticeScaler(**config["lattice_scaler"])
    return CrystalFlowModel(
        denoiser=denoiser,
        scaler=scaler,
        name=str(config.get("name", path.name)),
        sampling=dict(config.get("sampling") or {}),
        meta=dict(config.get("meta") or {}),
        conditions=ConditionScaler(**config["conditions"]) if config.get("conditions") else None,
    )


def export_crystal_model(
    source: str | Path,
    out: str | Path,
    *,
    name: str | None = None,
    steps: int | None = None,
) -> Path:
    """Copy a trained model (a run's ``model/``) to ``out`` under ``name``, with ``steps``
    as its default number of sampling steps: how a run becomes shipped weights.

    Files of ``out`` that are not the model's (a ``MODEL_CARD.md`` in particular) are kept:
    the model is written to a temporary directory and only its own three files replace the
    old ones.
    """
    import shutil
    import tempfile

    model = load_crystal_model(source)
    if name:
        model.name = name
    if steps is not None:
        if steps < 1:
            raise ValueError(f"steps {steps}: need at least 1")
        model.sampling["steps"] = int(steps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = save_crystal_model(model, Path(tmp) / "model")
        for file in ("config.json", "model.safetensors", "manifest.json"):
            shutil.copyfile(staged / file, out / file)
    load_crystal_model(out)  # the manifest matches what was written
    return out
