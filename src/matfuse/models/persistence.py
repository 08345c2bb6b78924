"""Pickle-free saving and loading of fitted ``PropertyEstimator`` objects.

Why not pickle/joblib: a shared model directory is code; unpickling one runs whatever it says.
Here nothing is executed on load that is not on an explicit allowlist.

Layout of a saved directory::

    config.json                 params, task types, resolved models, library versions, and a
                                sha256 for every file below (kept for reference; the
                                manifest is what loading checks)
    target_<j>.skops            the fitted components of target j (sklearn pipelines, GP, MAPIE
                                conformal objects, ensembles) serialised with skops
    target_<j>_booster_<k>.json XGBoost boosters in XGBoost's own JSON format
    target_<j>_booster_<k>.txt  LightGBM boosters in LightGBM's text model format
    manifest.json               size and sha256 of every other file (written last, see
                                :mod:`matfuse.models.manifest`)

The directory is written next to its destination and renamed into place when complete, so an
interrupted save never leaves a half-written estimator.

Boosters may sit anywhere inside the components (a bare model, every CV+ fold of a MAPIE
regressor, ensemble replicas). Before skops runs, each fitted XGBoost/LightGBM wrapper has its
``_Booster`` swapped for a string reference to its native file; the wrapper shell (hyper-
parameters, ``classes_``...) goes through skops, and on load the native model is re-attached.

On load, the manifest is verified first. Then, before skops creates a single object, each skops
file must pass two checks: every type that ``skops.io.get_untrusted_types`` reports is one of
the fully-qualified class names in :data:`ALLOWED_TYPES` (no module prefixes: ``numpy.``
covers ``numpy.memmap``, which writes files), and every node of its schema uses a loader in
:data:`ALLOWED_SKOPS_NODES` (no loader that calls a function or calls a class with arguments
taken from the file). Anything else raises :class:`UnsafeModelError`.

Predictions of a loaded estimator are bit-identical to the saved one as long as the library
versions match (a mismatch is warned about: numeric kernels can change between releases).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import re
import types
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matfuse.models.manifest import (
    MANIFEST_NAME,
    Manifest,
    UnsafeModelError,
    atomic_directory,
    verify_manifest,
)
from matfuse.models.target import TargetModel

if TYPE_CHECKING:
    from matfuse.models.estimator import PropertyEstimator

logger = logging.getLogger(__name__)

__all__ = [
    "ALLOWED_SKOPS_NODES",
    "ALLOWED_TYPES",
    "CONFIG_NAME",
    "UnsafeModelError",
    "check_skops_nodes",
    "check_trusted_types",
    "load_estimator",
    "save_estimator",
]

CONFIG_NAME = "config.json"
FORMAT_NAME = "matfuse.models.PropertyEstimator"
FORMAT_VERSION = 1

#: Every type a saved estimator may ask skops to trust, by exact fully-qualified name.
#:
#: Derived by saving every registry family (auto, xgboost, lightgbm, rf, svr, krr, gp, linear)
#: for regression, classification and multi-target data, with uncertainty none / native /
#: ensemble / conformal (split and CV+) / auto, tuned and untuned, and collecting
#: ``skops.io.get_untrusted_types``. Types skops already trusts (builtin containers and
#: primitives, ndarrays, numpy scalar types, ``RandomState``, scikit-learn's public
#: estimators) are never reported and so are not listed. Every entry is a class; no function,
#: ufunc or method is, or may be, on this list. A type that a new library version reports is
#: refused until it is added here, deliberately.
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        # numpy: the dtype of fitted arrays and attributes (skops' DTypeNode)
        "numpy.dtype",
        # stdlib: LightGBM wrappers hold ``defaultdict(OrderedDict)`` in ``_best_score``
        "collections.OrderedDict",
        # scikit-learn internals that are not public estimators
        "sklearn.tree._tree.Tree",  # the fitted trees of rf (and auto on small data)
        "sklearn.model_selection._split.KFold",  # MAPIE CV+ folds
        "sklearn.model_selection._split.StratifiedKFold",  # linear: LogisticRegressionCV
        "sklearn.calibration._CalibratedClassifier",  # svr classification: SVC + sigmoid
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",  # gp clf
        # gp kernels: ConstantKernel * RBF (+ WhiteKernel for regression)
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.RBF",
        "sklearn.gaussian_process.kernels.Sum",
        "sklearn.gaussian_process.kernels.WhiteKernel",
        # MAPIE conformal regression (uncertainty="conformal", split and CV+)
        "mapie.regression.regression.SplitConformalRegressor",
        "mapie.regression.regression.CrossConformalRegressor",
        "mapie.regression.regression._MapieRegressor",
        "mapie.estimator.regressor.EnsembleRegressor",
        "mapie.conformity_scores.bounds.absolute.AbsoluteConformityScore",
        # booster wrappers (the boosters themselves are native files, see the module doc)
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMClassifier",
        # matfuse's own steps
        "matfuse.models.preprocessing.ScaleByDimension",  # svr, krr, gp pipelines
        "matfuse.models.subsample.SubsampledEstimator",  # gp row cap
        # learned fusion shells (their torch weights are safetensors files, see below)
        "matfuse.fusion.learned.LearnedFusionRegressor",
        "matfuse.fusion.learned.LearnedFusionClassifier",
    }
)

#: skops node loaders our estimators' files use (collected with :data:`ALLOWED_TYPES`).
#: Left out on purpose: ``ConstructorFromReduceNode`` (calls a class with arguments from the
#: file: ``numpy.memmap(path, mode="w+")``), ``FunctionNode``, ``MethodNode``,
#: ``PartialNode`` and ``OperatorFuncNode`` (hand out callables), and data loaders that no
#: estimator of ours needs.
ALLOWED_SKOPS_NODES: frozenset[str] = frozenset(
    {
        "DictNode",
        "DefaultDictNode",
        "ListNode",
        "TupleNode",
        "JsonNode",  # str/int/float/bool/None
        "TypeNode",  # a type as a value (a dtype, defaultdict's default_factory)
        "ObjectNode",  # an allowed class restored from its state, without calling it
        "NdArrayNode",  # numpy arrays, loaded with allow_pickle=False
        "DTypeNode",
        "RandomStateNode",  # fitted random_state attributes
        "TreeNode",  # sklearn.tree._tree.Tree
        "CachedNode",  # a second reference to an object loaded earlier in the file
    }
)

#: Top-level names of an estimator directory that a save replaces (anything else is kept).
_OWNED = re.compile(
    r"config\.json|target_\d+(?:\.skops|_booster_\d+\.(?:json|txt)|_tensors_\d+\.safetensors)"
)
_BOOSTER_REF = "matfuse-external-booster:"
_TENSOR_REF = "matfuse-external-tensors:"
_VERSIONED_PACKAGES = (
    "matfuse",
    "numpy",
    "scipy",
    "scikit-learn",
    "mapie",
    "xgboost",
    "lightgbm",
    "skops",
)


def check_trusted_types(type_names: list[str], source: str = "the file") -> None:
    """Raise :class:`UnsafeModelError` unless every name is in :data:`ALLOWED_TYPES`.

    Exact names only: nothing is imported to decide, and no module is trusted wholesale.
    ``source`` names the file in the message.
    """
    refused = sorted(set(type_names) - ALLOWED_TYPES)
    if refused:
        raise UnsafeModelError(
            f"refusing to load {source}: it would instantiate types outside matfuse's "
            f"allow-list {refused}"
        )


def _skops_nodes(node: Any) -> Iterator[tuple[str, str]]:
    """(loader, module.class) of every node in a skops schema."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                name = f"{item.get('__module__')}.{item.get('__class__')}"
                yield str(item["__loader__"]), name
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_skops_nodes(data: bytes, source: str = "the file") -> None:
    """Raise :class:`UnsafeModelError` if the skops file uses a loader outside the allowlist.

    Why on top of the type check: a loader such as ``ConstructorFromReduceNode`` *calls* the
    type it names with arguments read from the file, and ``FunctionNode`` hands out a callable;
    our estimators never need either, so a file that contains one was not written by matfuse.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnsafeModelError(
            f"refusing to load {source}: not a readable skops file ({err})"
        ) from None
    refused = sorted(
        {
            f"{loader} ({name})"
            for loader, name in _skops_nodes(schema)
            if loader not in ALLOWED_SKOPS_NODES
        }
    )
    if refused:
        raise UnsafeModelError(
            f"refusing to load {source}: it uses skops loaders outside matfuse's allow-list "
            f"{refused}"
        )


def _reachable(root: Any) -> Iterator[Any]:
    """Every object reachable from ``root`` through attributes and containers (each once)."""
    import lightgbm as lgb
    import xgboost as xgb

    leaves = (
        str,
        bytes,
        int,
        float,
        complex,
        np.ndarray,
        np.generic,
        type,
        xgb.Booster,
        lgb.Booster,
    )
    opaque = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType)
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen or isinstance(obj, leaves):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, opaque):
            stack.extend(vars(obj).values())


def _booster_hosts(root: Any) -> Iterator[tuple[Any, str]]:
    """Fitted XGBoost / LightGBM sklearn wrappers under ``root``, with their format tag."""
    import lightgbm as lgb
    import xgboost as xgb

    for obj in _reachable(root):
        if isinstance(obj, xgb.XGBModel) and "_Booster" in vars(obj):
            yield obj, "xgboost"
        elif isinstance(obj, lgb.LGBMModel) and vars(obj).get("_Booster") is not None:
            yield obj, "lightgbm"


@contextmanager
def _boosters_detached(root: Any, directory: Path, stem: str) -> Iterator[list[str]]:
    """Write every booster under ``root`` natively and replace it by a reference while active.

    The live estimator is restored on exit, even if serialisation fails.
    """
    swapped: list[tuple[Any, Any]] = []
    written: dict[int, str] = {}
    try:
        for host, kind in _booster_hosts(root):
            booster = vars(host)["_Booster"]
            if isinstance(booster, str):
                continue
            if id(booster) not in written:
                suffix = ".json" if kind == "xgboost" else ".txt"
                name = f"{stem}_booster_{len(written)}{suffix}"
                if kind == "xgboost":
                    booster.save_model(str(directory / name))
                else:
                    booster.save_model(str(directory / name), num_iteration=-1)
                written[id(booster)] = name
            swapped.append((host, booster))
            host._Booster = _BOOSTER_REF + written[id(booster)]
        yield list(written.values())
    finally:
        for host, booster in swapped:
            host._Booster = booster


def _attach_boosters(root: Any, manifest: Manifest, allowed_files: set[str]) -> None:
    """Replace booster references under ``root`` with models parsed from their native files.

    The files are read through the verified ``manifest``, so a booster is exactly the bytes
    that were checked.
    """
    import lightgbm as lgb
    import xgboost as xgb

    loaded: dict[str, Any] = {}
    for obj in _reachable(root):
        if not isinstance(obj, xgb.XGBModel | lgb.LGBMModel):
            continue
        ref = vars(obj).get("_Booster")
        if not (isinstance(ref, str) and ref.startswith(_BOOSTER_REF)):
            continue
        name = ref[len(_BOOSTER_REF) :]
        if name not in allowed_files:
            raise UnsafeModelError(f"booster reference {name!r} is not a file listed in config")
        if name not in loaded:
            data = manifest.read_bytes(name)
            booster: xgb.Booster | lgb.Booster
            if isinstance(obj, xgb.XGBModel):
                booster = xgb.Booster()
                booster.load_model(bytearray(data))
                if obj.n_jobs is not None:
                    booster.set_param({"nthread": obj.n_jobs})
            else:
                booster = lgb.Booster(model_str=data.decode("utf-8"))
            loaded[name] = booster
        obj._Booster = loaded[name]


def _tensor_hosts(root: Any) -> list[Any]:
    """Objects under ``root`` that keep torch weights (the learned fusion estimators).

    They name the attribute holding their networks (``_tensor_attribute``) and convert
    them with ``export_tensors()`` / ``import_tensors(arrays)``.
    """
    return [
        obj
        for obj in _reachable(root)
        if isinstance(getattr(type(obj), "_tensor_attribute", None), str)
        and callable(getattr(obj, "export_tensors", None))
        and hasattr(obj, type(obj)._tensor_attribute)
    ]


@contextmanager
def _tensors_detached(root: Any, directory: Path, stem: str) -> Iterator[list[str]]:
    """Write each torch-weight host's tensors as safetensors and hide its networks meanwhile.

    Same idea as :func:`_boosters_detached`: skops stores the shell (parameters, scaling,
    classes), the weights are plain named float arrays; restored on exit.
    """
    from safetensors.numpy import save_file

    swapped: list[tuple[Any, str, Any]] = []
    written: list[str] = []
    try:
        for host in _tensor_hosts(root):
            attr = type(host)._tensor_attribute
            if isinstance(getattr(host, attr), str):
                continue
            name = f"{stem}_tensors_{len(written)}.safetensors"
            save_file(host.export_tensors(), str(directory / name))
            written.append(name)
            swapped.append((host, attr, getattr(host, attr)))
            setattr(host, attr, _TENSOR_REF + name)
        yield written
    finally:
        for host, attr, value in swapped:
            setattr(host, attr, value)


def _attach_tensors(root: Any, manifest: Manifest, allowed_files: set[str]) -> None:
    """Rebuild the networks of torch-weight hosts from their verified safetensors files."""
    from safetensors.numpy import load

    for host in _tensor_hosts(root):
        ref = getattr(host, type(host)._tensor_attribute)
        if not (isinstance(ref, str) and ref.startswith(_TENSOR_REF)):
            continue
        name = ref[len(_TENSOR_REF) :]
        if name not in allowed_files:
            raise UnsafeModelError(f"tensor reference {name!r} is not a file listed in config")
        host.import_tensors(load(manifest.read_bytes(name)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(
        f"cannot save a parameter of type {type(value).__name__} in config.json; "
        "model_params must hold JSON-compatible values (numbers, strings, lists, dicts)"
    )


def save_estimator(est: PropertyEstimator, directory: Path, overwrite: bool = False) -> Path:
    """Save a fitted estimator into ``directory`` and return it.

    The files are written into a temporary directory next to ``directory`` that replaces it
    only once complete (with its manifest), so an interrupted save leaves the previous state.
    Refuses a non-empty directory unless ``overwrite=True``, in which case the files of a
    previous matfuse save are replaced and any other files are kept (and listed in the new
    manifest).
    """
    import skops.io as sio
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "target_models_")
    directory = Path(directory)
    params_json = json.dumps(est.get_params(deep=False), default=_json_default)
    tuned_json = json.dumps(est.tuned_params_, default=_json_default)
    with atomic_directory(
        directory, FORMAT_NAME, owns=lambda name: bool(_OWNED.fullmatch(name)), overwrite=overwrite
    ) as tmp:
        targets: list[dict[str, Any]] = []
        files: dict[str, dict[str, str]] = {}
        for j, target_model in enumerate(est.target_models_):
            stem = f"target_{j}"
            components = target_model.components()
            with (
                _tensors_detached(components, tmp, stem) as tensor_files,
                _boosters_detached(components, tmp, stem) as booster_files,
            ):
                sio.dump(components, tmp / f"{stem}.skops")
            for name in tensor_files:
                files[name] = {"kind": "safetensors", "sha256": _sha256(tmp / name)}
            for name in booster_files:
                kind = "xgboost-json" if name.endswith(".json") else "lightgbm-text"
                files[name] = {"kind": kind, "sha256": _sha256(tmp / name)}
            files[f"{stem}.skops"] = {"kind": "skops", "sha256": _sha256(tmp / f"{stem}.skops")}
            targets.append(
                {
                    "task": target_model.task,
                    "model": target_model.model_name,
                    "uncertainty": target_model.uncertainty,
                    "conformal_method": target_model.conformal_method,
                    "y_center": target_model.y_center,
                    "y_scale": target_model.y_scale,
                    "y_transform": target_model.y_transform.to_dict(),
                    "components": f"{stem}.skops",
                    "boosters": booster_files,
                    **({"tensors": tensor_files} if tensor_files else {}),
                }
            )
        config = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "params": json.loads(params_json),
            "n_features_in": int(est.n_features_in_),
            "n_targets": int(est.n_targets_),
            "task_types": list(est.task_types_),
            "tuned_params": json.loads(tuned_json),
            "targets": targets,
            "versions": _versions(),
            "files": files,
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def _read_config(manifest: Manifest) -> dict[str, Any]:
    """The verified ``config.json``; its own file list must agree with the manifest."""
    config = manifest.read_json(CONFIG_NAME)
    where = manifest.root / CONFIG_NAME
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ValueError(f"{where} is not a {FORMAT_NAME} file")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"unsupported format_version {config.get('format_version')!r}; "
            f"this matfuse reads version {FORMAT_VERSION}"
        )
    for name, entry in config["files"].items():
        listed = manifest.files.get(name)
        if listed is None or Path(name).name != name:
            raise UnsafeModelError(f"{name!r} in {where} is not a file listed in {MANIFEST_NAME}")
        if entry.get("sha256") != listed.sha256:
            raise UnsafeModelError(f"{name} does not match its sha256 in {where}")
    saved = config.get("versions", {})
    current = _versions()
    changed = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
    if changed:
        warnings.warn(
            f"library versions differ from those at save time {changed}; predictions may not be "
            "bit-identical",
            UserWarning,
            stacklevel=3,
        )
    return config


def load_estimator(directory: Path) -> PropertyEstimator:
    """Load an estimator saved by :func:`save_estimator`, refusing disallowed types.

    The manifest is verified before any file is parsed; each skops file then passes the type
    and loader allow-lists before skops constructs anything.
    """
    import skops.io as sio

    from matfuse.models.estimator import PropertyEstimator

    directory = Path(directory)
    if not any(os.path.lexists(directory / n) for n in (MANIFEST_NAME, CONFIG_NAME)):
        raise FileNotFoundError(
            f"{directory / CONFIG_NAME} not found: not a saved matfuse estimator"
        )
    manifest = verify_manifest(directory, FORMAT_NAME)
    config = _read_config(manifest)
    listed = set(config["files"])
    target_models: list[TargetModel] = []
    for entry in config["targets"]:
        name = entry["components"]
        if name not in listed:
            raise UnsafeModelError(f"{name} is not listed in config files")
        data = manifest.read_bytes(name)
        untrusted = sio.get_untrusted_types(data=data)
        check_trusted_types(untrusted, source=str(directory / name))
        check_skops_nodes(data, source=str(directory / name))
        components = sio.loads(data, trusted=untrusted)
        _attach_boosters(components, manifest, listed)
        _attach_tensors(components, manifest, listed)
        target_models.append(
            TargetModel(
                task=entry["task"],
                model_name=entry["model"],
                uncertainty=entry["uncertainty"],
                conformal_method=entry["conformal_method"],
                estimator=components["estimator"],
                replicas=list(components["replicas"]),
                conformal=components["conformal"],
                y_center=float(entry.get("y_center", 0.0)),
                y_scale=float(entry.get("y_scale", 1.0)),
                y_transform=entry.get("y_transform"),  # None (older saves) -> identity
            )
        )
    est = PropertyEstimator(**config["params"])
    est.n_features_in_ = int(config["n_features_in"])
    est.task_types_ = list(config["task_types"])
    est.n_targets_ = int(config["n_targets"])
    est.models_ = [tm.model_name for tm in target_models]
    est.uncertainty_ = [tm.uncertainty for tm in target_models]
    est.conformal_methods_ = [tm.conformal_method for tm in target_models]
    est.tuned_params_ = [dict(p) for p in config["tuned_params"]]
    est.target_models_ = target_models
    logger.debug("loaded %s (%d targets)", directory, len(target_models))
    return est
