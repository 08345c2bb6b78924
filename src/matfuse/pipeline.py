"""The property model: molecules → encoders → late fusion → estimator, saved as a directory.

This is the object that the CLI's ``train``/``predict``, the benchmark, the demo and the
web UI all use, so that every path from a table to a prediction is the same code.

An *end-to-end* model of the registry (``crystal-graph``: its spec names the input kinds it
reads) takes the place of encoders, fusion and estimator: :meth:`PropertyModel.blocks` is
then its own featurisation of each row (crystal graphs), one network is fitted per target,
and the directory holds ``matfuse.json``, ``model.safetensors`` and the manifest, loaded by
the same :meth:`PropertyModel.load`. Such a model refuses other kinds of inputs with
:class:`IncompatibleModelError` (see :func:`check_model`).
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
from matfuse.fusion.impute import ImputingFusion
from matfuse.fusion.late import LateFusion, compute_blocks
from matfuse.inputs import check_encoders, display_keys, get_kind, kind_names, parse_inputs
from matfuse.models import (
    PropertyEstimator,
    get_spec,
    infer_task_types,
    list_models,
    load_estimator,
    make_estimator,
    save_estimator,
)
from matfuse.models.manifest import MANIFEST_NAME, atomic_directory, verify_manifest

#: The default representation of molecules (each input kind declares its own defaults).
DEFAULT_ENCODERS: tuple[str, ...] = get_kind("molecule").default_encoders
CONFIG_NAME = "matfuse.json"
FUSION_WEIGHTS = "fusion.safetensors"
#: The weights of an end-to-end model, one prefix per target (``0.``, ``1.``...).
END_TO_END_WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1
#: ``impute`` values: ``auto`` fills a missing modality from the others (cross-modal
#: translators) for a multimodal input with a model that cannot mask blocks itself;
#: ``translate`` always does; ``none`` leaves missing blocks NaN for the model to handle.
IMPUTE_MODES: tuple[str, ...] = ("auto", "translate", "none")
#: The manifest kind of a saved PropertyModel, and the entries a save owns (replaces).
MODEL_KIND = "matfuse.PropertyModel"
_MODEL_ENTRIES = frozenset({CONFIG_NAME, FUSION_WEIGHTS, "estimator", END_TO_END_WEIGHTS})


class IncompatibleModelError(ValueError):
    """A model that cannot learn from this kind of input (or these targets)."""


def check_model(model: str, input_type: str) -> None:
    """Raise when ``model`` is unknown or cannot learn from ``input_type`` inputs.

    Models of encoded features read every kind; an end-to-end model only the kinds its
    registry spec names (``crystal-graph``: structures). The CLI calls this while it checks
    its options, so a refusal is one line and exit status 2.
    """
    spec = get_spec(model)
    if not spec.end_to_end:
        return
    kinds = kind_names(input_type)
    if len(kinds) != 1 or kinds[0] not in spec.input_kinds:
        wanted = " or ".join(spec.input_kinds)
        raise IncompatibleModelError(
            f"model {spec.name!r} learns from {wanted} inputs only, not from "
            f"{'+'.join(kinds)} inputs; give {spec.input_kinds[0]} inputs, or choose a "
            "model of encoded features"
        )


class PropertyModel(BaseEstimator):
    """Predict one or several properties of molecules or materials.

    ``input_type`` says what the inputs are: ``"molecule"`` (SMILES), ``"composition"``
    (formulas) or ``"structure"`` (CIF/POSCAR/extended-XYZ text, paths, pymatgen or ASE
    objects); the encoders must be able to read that kind (see :mod:`matfuse.inputs`).

    ``model`` names a registry entry (``matfuse models``). An end-to-end entry such as
    ``"crystal-graph"`` reads the inputs itself, so ``encoders``, ``reduce``, ``uncertainty``
    and ``alpha`` do not apply to it; ``model_params`` go to its network.

    ``impute`` says what happens to a row whose block is missing (a structure never
    computed, an encoder that failed on it): with ``translate`` the block is predicted
    from the row's other blocks by cross-modal translators fitted on the training rows
    that have both (:class:`~matfuse.fusion.impute.ImputingFusion`); with ``none`` it stays
    NaN (XGBoost routes it, other models fill the column median). ``auto`` translates for a
    multimodal input (``composition+structure``) unless the model is a learned fusion,
    which masks missing blocks itself: on perov_5 with structures hidden for 25-75 % of
    the test rows, translation beat NaN routing and mean filling at every fraction, and
    fusion-moe fed translated blocks did worse than fusion-moe masking them
    (``benchmarks/results/multimodal_missing.md``).

    >>> m = PropertyModel(encoders=["ecfp"], model="rf")  # doctest: +SKIP
    >>> m.fit(smiles, y).predict_table(new_smiles)  # doctest: +SKIP
    >>> PropertyModel(encoders=["composition"], input_type="composition")  # doctest: +SKIP
    >>> PropertyModel(model="crystal-graph", input_type="structure")  # doctest: +SKIP
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
        target_transform: str = "auto",
        impute: str = "auto",
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
        self.target_transform = target_transform
        self.impute = impute

    # -- building blocks --------------------------------------------------------------
    def _fusion(self) -> LateFusion | ImputingFusion:
        if self.imputes:
            return ImputingFusion(
                encoders=list(self.encoders),
                reduce=self.reduce,
                standardize=self.standardize,
                random_state=self.random_state,
            )
        return LateFusion(
            encoders=list(self.encoders), reduce=self.reduce, standardize=self.standardize
        )

    @property
    def imputes(self) -> bool:
        """Whether missing blocks are filled by cross-modal translators (see ``impute``)."""
        if self.impute not in IMPUTE_MODES:
            raise ValueError(
                f"impute must be one of {', '.join(IMPUTE_MODES)}, got {self.impute!r}"
            )
        if self.impute == "none" or self.end_to_end or len(list(self.encoders)) < 2:
            return False
        if self.impute == "translate":
            return True
        return len(kind_names(self.input_type)) > 1 and not get_spec(self.model).block_aware

    def _estimator(self) -> PropertyEstimator:
        return PropertyEstimator(
            model=self.model,
            task=self.task,
            uncertainty=self.uncertainty,
            alpha=self.alpha,
            model_params=self._with_block_slices(
                self.model_params if self.model_params is not None else self._kind_params()
            ),
            tune_trials=self.tune_trials,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            target_transform=self.target_transform,
        )

    def _with_block_slices(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """Add the fused blocks' column slices for a ``block_aware`` model (learned fusion).

        Other models get ``params`` untouched. Per-model params (``{name: {...}}``) get the
        slices under the model's own name.
        """
        spec = get_spec(self.model)
        if not spec.block_aware:
            return params
        slices = {k: [int(lo), int(hi)] for k, (lo, hi) in self.fusion_.block_slices_.items()}
        given = dict(params or {})
        names = {s.name for s in list_models()}
        if given and all(k in names for k in given):
            return {**given, spec.name: {**given.get(spec.name, {}), "blocks": slices}}
        return {**given, "blocks": slices}

    def _kind_params(self) -> dict[str, Any] | None:
        """The input kinds' default per-model parameters (used when none are given)."""
        merged: dict[str, Any] = {}
        for name in kind_names(self.input_type):
            for model, params in get_kind(name).default_model_params.items():
                merged[model] = {**merged.get(model, {}), **params}
        return merged or None

    @property
    def end_to_end(self) -> bool:
        """Whether ``model`` reads the inputs itself instead of encoded features."""
        return get_spec(self.model).end_to_end

    def _end_to_end_model(self, task: str = "regression") -> Any:
        """An unfitted network of the end-to-end ``model`` (one target's, of ``task``)."""
        return make_estimator(
            self.model,
            task,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            **(self.model_params or {}),
        )

    def parse(self, inputs: Any, **options: Any) -> Any:
        """Parse inputs of this model's kind (molecules with its standardisation).

        ``options`` are parse options for the kinds that take them, e.g.
        ``allow_paths=False`` for structure text typed by someone else.
        """
        return parse_inputs(inputs, self.input_type, standardize=self.standardize, **options)

    def blocks(self, smiles: Any) -> dict[str, np.ndarray]:
        """Encoder blocks for ``smiles`` (all-NaN rows where an input is invalid).

        For an end-to-end model: its own featurisation, an object array under the model's
        name holding one entry per row (a crystal graph, ``None`` where invalid).
        """
        if self.end_to_end:
            check_model(self.model, self.input_type)
            models = getattr(self, "target_models_", None) or [self._end_to_end_model()]
            features = models[0].featurize(self.parse(smiles))
            out = np.empty(len(features), dtype=object)
            out[:] = features
            return {self.model: out}
        computed = compute_blocks(list(self.encoders), self.parse(smiles), self.standardize)
        return {name: b.values for name, b in computed.items()}

    # -- fitting ----------------------------------------------------------------------
    def fit(self, smiles: Any, Y: Any, target_names: Sequence[str] | None = None) -> PropertyModel:
        """Fit on molecules and targets (NaN labels allowed; invalid molecules skipped)."""
        check_model(self.model, self.input_type)
        if not self.end_to_end:
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
        if self.end_to_end:
            return self._fit_end_to_end(blocks, Y, names)
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

    def _fit_end_to_end(
        self, blocks: dict[str, np.ndarray], Y: np.ndarray, names: list[str]
    ) -> PropertyModel:
        """One network per target on the model's own featurisation (see :meth:`blocks`)."""
        features = self._end_to_end_features(blocks)
        spec = get_spec(self.model)
        task_types = infer_task_types(Y, self.task)
        unsupported = [n for n, t in zip(names, task_types, strict=True) if not spec.supports(t)]
        if unsupported:
            raise IncompatibleModelError(
                f"model {spec.name!r} does regression only; target(s) "
                f"{', '.join(unsupported)} are classification (0/1 labels)"
            )
        if self.tune_trials:
            raise IncompatibleModelError(f"model {spec.name!r} cannot be tuned; drop tune_trials")
        usable = _valid_features(features) & np.isfinite(Y).any(axis=1)
        if usable.sum() < 2:
            raise ValueError("fewer than two rows with a valid input and a label")
        self.target_models_ = [
            self._end_to_end_model(task_types[j]).fit(list(features), Y[:, j])
            for j in range(Y.shape[1])
        ]
        self.target_names_ = names
        self.task_types_ = task_types
        self.n_train_ = int(usable.sum())
        return self

    def _end_to_end_features(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        if set(blocks) != {self.model}:
            raise IncompatibleModelError(
                f"model {self.model!r} learns from the inputs themselves, not from encoder "
                f"blocks ({', '.join(blocks)}); fit it with PropertyModel.fit(inputs, Y)"
            )
        return blocks[self.model]

    # -- predicting -------------------------------------------------------------------
    def predict_with_uncertainty(self, blocks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predictions, std and intervals from encoder blocks, NaN for unusable rows.

        An end-to-end model gives predictions (probabilities for classes) and, where it has
        ``predict_std``, a std; no intervals.
        """
        if self.end_to_end:
            features = self._end_to_end_features(blocks)
            ok = _valid_features(features)
        else:
            ok = _any_valid(blocks)
        n, t = len(ok), len(self.target_names_)
        out = {
            "pred": np.full((n, t), np.nan),
            "std": np.full((n, t), np.nan),
            "interval": np.full((n, t, 2), np.nan),
        }
        if self.end_to_end:
            for j, network in enumerate(self.target_models_):
                rows = list(features)
                classes = self.task_types_[j] == "classification"
                out["pred"][:, j] = (
                    network.predict_proba(rows)[:, 1] if classes else network.predict(rows)
                )
                if hasattr(network, "predict_std"):
                    out["std"][:, j] = network.predict_std(rows)
        elif ok.any():
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

    def predict_table(self, smiles: Any, *, all_columns: bool = False) -> pd.DataFrame:
        """Every input row with ``pred_<target>``, uncertainty columns and ``error``.

        A ``std_``/``lower_``/``upper_`` column appears when some row of this batch has a
        value; with ``all_columns`` whenever the model can give one, so that batches
        predicted one after another (a streamed table) share one set of columns.
        """
        parsed = self.parse(smiles)
        blocks = self.blocks(parsed)
        res = self.predict_with_uncertainty(blocks)
        table = pd.DataFrame({"input": [_display(x) for x in parsed.inputs]})
        key_label, keys = display_keys(parsed)
        table[key_label] = keys
        if all_columns:
            has_std, has_interval = self._uncertainty_outputs()
        else:  # what this batch has
            has_std = list(np.isfinite(res["std"]).any(axis=0))
            has_interval = list(np.isfinite(res["interval"]).any(axis=(0, 2)))
        for j, (name, kind) in enumerate(zip(self.target_names_, self.task_types_, strict=True)):
            table[f"pred_{name}"] = res["pred"][:, j]
            if has_std[j]:
                table[f"std_{name}"] = res["std"][:, j]
            if kind == "regression" and has_interval[j]:
                table[f"lower_{name}"] = res["interval"][:, j, 0]
                table[f"upper_{name}"] = res["interval"][:, j, 1]
        if isinstance(getattr(self, "fusion_", None), ImputingFusion):
            filled = self.fusion_.imputed_mask(blocks)
            table["imputed"] = [
                ",".join(k for k, rows in filled.items() if rows[i]) for i in range(len(table))
            ]
        errors = list(parsed.errors)
        if self.end_to_end:
            ok = _valid_features(blocks[self.model])
            why = f"model {self.model!r} could not read this {self.input_type}"
        else:
            ok, why = _any_valid(blocks), f"no encoder could represent this {self.input_type}"
        for i in range(len(errors)):
            if errors[i] is None and not ok[i]:
                errors[i] = why
        table["error"] = errors
        return table

    def _uncertainty_outputs(self) -> tuple[list[bool], list[bool]]:
        """Per target, whether the model gives a spread and whether it gives an interval."""
        if self.end_to_end:
            has_std = [hasattr(network, "predict_std") for network in self.target_models_]
            return has_std, [False] * len(self.target_names_)
        has_std = [mode in ("native", "ensemble") for mode in self.estimator_.uncertainty_]
        has_interval = [tm.conformal is not None for tm in self.estimator_.target_models_]
        return has_std, has_interval

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
            if self.end_to_end:
                arrays, model_section = self._end_to_end_state()
                save_file(arrays, str(tmp / END_TO_END_WEIGHTS))
            else:
                save_file(
                    {k: np.ascontiguousarray(v) for k, v in self.fusion_.state_tensors().items()},
                    str(tmp / FUSION_WEIGHTS),
                )
                save_estimator(self.estimator_, tmp / "estimator")
                model_section = {
                    "fusion": {
                        "encoders": list(self.encoders),
                        "slices": self.fusion_.block_slices_,
                    }
                }
                if isinstance(self.fusion_, ImputingFusion):
                    model_section["fusion"]["translators"] = self.fusion_.state_config()
            params = self.get_params()
            # an end-to-end model reads no encoders: the config must not claim it does
            params["encoders"] = [] if self.end_to_end else list(params["encoders"])
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
                **model_section,
            }
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2))
        return directory

    def _end_to_end_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every target network's weights under ``<j>.`` and its parameters and state."""
        arrays: dict[str, np.ndarray] = {}
        targets = []
        for j, network in enumerate(self.target_models_):
            state, weights = network.state()
            arrays.update({f"{j}.{k}": np.ascontiguousarray(v) for k, v in weights.items()})
            params = {k: v for k, v in network.get_params().items() if not callable(v)}
            targets.append({"params": params, "state": state})
        return arrays, {"end_to_end": {"model": self.model, "targets": targets}}

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
        # models saved before ``impute`` existed left missing blocks to the model
        model = cls(**{"impute": "none", **config["params"]})
        if model.end_to_end:
            section = config.get("end_to_end")
            if not isinstance(section, dict) or section.get("model") != model.model:
                raise ValueError(f"{directory / CONFIG_NAME} has no {model.model} networks")
            arrays = load_safetensors(manifest.read_bytes(END_TO_END_WEIGHTS))
            model.target_models_ = []
            for j, target in enumerate(section["targets"]):
                prefix = f"{j}."
                weights = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                task = config["task_types"][j]
                network = make_estimator(model.model, task, **target["params"])
                model.target_models_.append(network.load_state(target["state"], weights))
        else:
            tensors = load_safetensors(manifest.read_bytes(FUSION_WEIGHTS))
            fusion = model._fusion()
            if isinstance(fusion, ImputingFusion):
                translators = (config.get("fusion") or {}).get("translators")
                if not isinstance(translators, list):
                    raise ValueError(f"{directory / CONFIG_NAME} lists no imputation translators")
                model.fusion_ = fusion.load_state(translators, tensors)
            else:
                model.fusion_ = fusion.load_state_tensors(tensors)
            model.estimator_ = load_estimator(directory / "estimator")
        model.target_names_ = list(config["target_names"])
        model.task_types_ = list(config["task_types"])
        model.n_train_ = int(config.get("n_train", 0))
        return model


def _any_valid(blocks: dict[str, np.ndarray]) -> np.ndarray:
    masks = [valid_rows(np.asarray(v)) for v in blocks.values()]
    return np.logical_or.reduce(masks) if masks else np.zeros(0, dtype=bool)


def _valid_features(features: np.ndarray) -> np.ndarray:
    """Rows of an end-to-end model's featurisation that it can read (not ``None``)."""
    return np.array([f is not None for f in features], dtype=bool)


def _display(x: Any) -> Any:
    return x if isinstance(x, str) or x is None else str(x)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("matfuse")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"
