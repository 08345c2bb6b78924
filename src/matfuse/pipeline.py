"""The property model: molecules → encoders → late fusion → estimator, saved as a directory.

This is the object that the CLI's ``train``/``predict``, the benchmark, the demo and the
web UI all use, so that every path from a table to a prediction is the same code.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file
from sklearn.base import BaseEstimator

from matfuse.chem.standardize import Standardization
from matfuse.encoders.base import valid_rows
from matfuse.fusion.late import LateFusion, compute_blocks
from matfuse.inputs import check_encoders, display_keys, get_kind, parse_inputs
from matfuse.models import PropertyEstimator, load_estimator, save_estimator
from matfuse.models.manifest import MANIFEST_NAME, atomic_directory, verify_manifest

#: The default representation of molecules (each input kind declares its own defaults).
DEFAULT_ENCODERS: tuple[str, ...] = get_kind("molecule").default_encoders
CONFIG_NAME = "matfuse.json"
FUSION_WEIGHTS = "fusion.safetensors"
FORMAT_VERSION = 1
#: The manifest kind of a saved PropertyModel, and the entries a save owns (replaces).
MODEL_KIND = "matfuse.PropertyModel"
_MODEL_ENTRIES = frozenset({CONFIG_NAME, FUSION_WEIGHTS, "estimator"})


class PropertyModel(BaseEstimator):
    """Predict one or several properties of molecules or materials.

    ``input_type`` says what the inputs are: ``"molecule"`` (SMILES), ``"composition"``
    (formulas) or ``"structure"`` (CIF/POSCAR/extended-XYZ text, paths, pymatgen or ASE
    objects); the encoders must be able to read that kind (see :mod:`matfuse.inputs`).

    >>> m = PropertyModel(encoders=["ecfp"], model="rf")  # doctest: +SKIP
    >>> m.fit(smiles, y).predict_table(new_smiles)  # doctest: +SKIP
    >>> PropertyModel(encoders=["composition"], input_type="composition")  # doctest: +SKIP
    """

    def __init__(
        self,
        encoders: Sequence[str] = DEFAULT_ENCODERS,
        model: str = "auto",
        task: str | list[str] = "auto",
        uncertainty: str = "auto",
        alpha: float = 0.1,
        reduce: int | dict[str, int] | None = None,
        standardize: Standardization = "cleanup",
        model_params: dict[str, Any] | None = None,
        tune_trials: int = 0,
        random_state: int = 0,
        n_jobs: int = 1,
        input_type: str = "molecule",
    ) -> None:
        self.encoders = encoders
        self.model = model
        self.task = task
        self.uncertainty = uncertainty
        self.alpha = alpha
        self.reduce = reduce
        self.standardize = standardize
        self.model_params = model_params
        self.tune_trials = tune_trials
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.input_type = input_type

    # -- building blocks --------------------------------------------------------------
    def _fusion(self) -> LateFusion:
        return LateFusion(
            encoders=list(self.encoders), reduce=self.reduce, standardize=self.standardize
        )

    def _estimator(self) -> PropertyEstimator:
        return PropertyEstimator(
            model=self.model,
            task=self.task,
            uncertainty=self.uncertainty,
            alpha=self.alpha,
            model_params=self.model_params,
            tune_trials=self.tune_trials,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def parse(self, inputs: Any) -> Any:
        """Parse inputs of this model's kind (molecules with its standardisation)."""
        return parse_inputs(inputs, self.input_type, standardize=self.standardize)

    def blocks(self, smiles: Any) -> dict[str, np.ndarray]:
        """Encoder blocks for ``smiles`` (all-NaN rows where an input is invalid)."""
        computed = compute_blocks(list(self.encoders), self.parse(smiles), self.standardize)
        return {name: b.values for name, b in computed.items()}

    # -- fitting ----------------------------------------------------------------------
    def fit(self, smiles: Any, Y: Any, target_names: Sequence[str] | None = None) -> PropertyModel:
        """Fit on molecules and targets (NaN labels allowed; invalid molecules skipped)."""
        check_encoders(list(self.encoders), self.input_type)
        parsed = self.parse(smiles)
        return self.fit_blocks(self.blocks(parsed), Y, target_names=target_names)

    def fit_blocks(
        self,
        blocks: dict[str, np.ndarray],
        Y: Any,
        target_names: Sequence[str] | None = None,
    ) -> PropertyModel:
        """Fit from precomputed encoder blocks (lets benchmarks encode each set once)."""
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        names = list(target_names) if target_names else [f"y{i}" for i in range(Y.shape[1])]
        if len(names) != Y.shape[1]:
            raise ValueError(f"{len(names)} target names for {Y.shape[1]} target columns")
        usable = _any_valid(blocks) & np.isfinite(Y).any(axis=1)
        if usable.sum() < 2:
            raise ValueError("fewer than two rows with a valid input and a label")
        train_blocks = {k: v[usable] for k, v in blocks.items()}
        self.fusion_ = self._fusion().fit_blocks(train_blocks)
        X = self.fusion_.transform_blocks(train_blocks)
        self.estimator_ = self._estimator().fit(X, Y[usable])
        self.target_names_ = names
        self.task_types_ = list(self.estimator_.task_types_)
        self.n_train_ = int(usable.sum())
        return self

    # -- predicting -------------------------------------------------------------------
    def predict_with_uncertainty(self, blocks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predictions, std and intervals from encoder blocks, NaN for unusable rows."""
        ok = _any_valid(blocks)
        n, t = len(ok), len(self.target_names_)
        out = {
            "pred": np.full((n, t), np.nan),
            "std": np.full((n, t), np.nan),
            "interval": np.full((n, t, 2), np.nan),
        }
        if ok.any():
            X = self.fusion_.transform_blocks({k: v[ok] for k, v in blocks.items()})
            out["pred"][ok] = self.estimator_.predict(X)
            std = self.estimator_.predict_std(X)
            if std is not None:
                out["std"][ok] = std
            if "regression" in self.task_types_:
                out["interval"][ok] = self.estimator_.predict_interval(X)
        return out

    def predict_blocks(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        return self.predict_with_uncertainty(blocks)["pred"]

    def predict(self, smiles: Any) -> np.ndarray:
        """(n, t) predictions; NaN rows for invalid molecules. Probabilities for classes."""
        return self.predict_blocks(self.blocks(smiles))

    def predict_table(self, smiles: Any) -> pd.DataFrame:
        """Every input row with ``pred_<target>``, uncertainty columns and ``error``."""
        parsed = self.parse(smiles)
        blocks = self.blocks(parsed)
        res = self.predict_with_uncertainty(blocks)
        table = pd.DataFrame({"input": [_display(x) for x in parsed.inputs]})
        key_label, keys = display_keys(parsed)
        table[key_label] = keys
        for j, (name, kind) in enumerate(zip(self.target_names_, self.task_types_, strict=True)):
            table[f"pred_{name}"] = res["pred"][:, j]
            if np.isfinite(res["std"][:, j]).any():
                table[f"std_{name}"] = res["std"][:, j]
            if kind == "regression" and np.isfinite(res["interval"][:, j]).any():
                table[f"lower_{name}"] = res["interval"][:, j, 0]
                table[f"upper_{name}"] = res["interval"][:, j, 1]
        errors = list(parsed.errors)
        ok = _any_valid(blocks)
        for i in range(len(errors)):
            if errors[i] is None and not ok[i]:
                errors[i] = f"no encoder could represent this {self.input_type}"
        table["error"] = errors
        return table

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the model as a directory: JSON config, safetensors and estimator files.

        Written next to ``directory`` and swapped into place when complete, with a manifest
        of every file, so an interrupted save leaves the previous model (or nothing), never
        a partial one. A previous model there is replaced; other entries (the ``report/`` of
        ``matfuse train``) are kept and listed in the manifest.
        """
        directory = Path(directory)
        with atomic_directory(directory, MODEL_KIND, owns=_MODEL_ENTRIES.__contains__) as tmp:
            save_file(
                {k: np.ascontiguousarray(v) for k, v in self.fusion_.state_tensors().items()},
                str(tmp / FUSION_WEIGHTS),
            )
            save_estimator(self.estimator_, tmp / "estimator")
            params = self.get_params()
            params["encoders"] = list(params["encoders"])
            config = {
                "format_version": FORMAT_VERSION,
                "kind": "PropertyModel",
                "matfuse_version": _version(),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "params": params,
                "target_names": self.target_names_,
                "task_types": self.task_types_,
                "n_train": self.n_train_,
                "fusion": {"encoders": list(self.encoders), "slices": self.fusion_.block_slices_},
            }
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PropertyModel:
        """Load a directory written by :meth:`save` (no pickle is involved).

        Every file is checked against the manifest before any is parsed, and parsed from the
        bytes that were checked.
        """
        directory = Path(directory)
        if not any(os.path.lexists(directory / n) for n in (CONFIG_NAME, MANIFEST_NAME)):
            raise FileNotFoundError(f"{directory} is not a matfuse model (no {CONFIG_NAME})")
        manifest = verify_manifest(directory, MODEL_KIND)
        config = manifest.read_json(CONFIG_NAME)
        if not isinstance(config, dict) or config.get("kind") != "PropertyModel":
            kind = config.get("kind") if isinstance(config, dict) else None
            raise ValueError(f"{directory / CONFIG_NAME} holds a {kind!r}, not a PropertyModel")
        model = cls(**config["params"])
        model.fusion_ = model._fusion().load_state_tensors(
            load_safetensors(manifest.read_bytes(FUSION_WEIGHTS))
        )
        model.estimator_ = load_estimator(directory / "estimator")
        model.target_names_ = list(config["target_names"])
        model.task_types_ = list(config["task_types"])
        model.n_train_ = int(config.get("n_train", 0))
        return model


def _any_valid(blocks: dict[str, np.ndarray]) -> np.ndarray:
    masks = [valid_rows(np.asarray(v)) for v in blocks.values()]
    return np.logical_or.reduce(masks) if masks else np.zeros(0, dtype=bool)


def _display(x: Any) -> Any:
    return x if isinstance(x, str) or x is None else str(x)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("matfuse")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"
