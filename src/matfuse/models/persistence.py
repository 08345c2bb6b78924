"""Pickle-free saving and loading of fitted ``PropertyEstimator`` objects.

Why not pickle/joblib: a shared model directory is code; unpickling one runs whatever it says.
Here nothing is executed on load that is not on an explicit allowlist.

Layout of a saved directory::

    config.json                 params, task types, resolved models, library versions, and a
                                sha256 for every other file (written last: its presence means
                                the save completed)
    target_<j>.skops            the fitted components of target j (sklearn pipelines, GP, MAPIE
                                conformal objects, ensembles) serialised with skops
    target_<j>_booster_<k>.json XGBoost boosters in XGBoost's own JSON format
    target_<j>_booster_<k>.txt  LightGBM boosters in LightGBM's text model format

Boosters may sit anywhere inside the components (a bare model, every CV+ fold of a MAPIE
regressor, ensemble replicas). Before skops runs, each fitted XGBoost/LightGBM wrapper has its
``_Booster`` swapped for a string reference to its native file; the wrapper shell (hyper-
parameters, ``classes_``...) goes through skops, and on load the native model is re-attached.

On load, ``skops.io.get_untrusted_types`` lists every type the file would instantiate; each must
be a *class* from an allowed package (:data:`ALLOWED_MODULE_PREFIXES`) or one of a few builtin
containers. Functions are refused even from allowed packages (a pipeline step holding
``numpy.load`` or ``os.system`` is exactly the attack to stop). Anything else raises
:class:`UnsafeModelError` before a single object is created.

Predictions of a loaded estimator are bit-identical to the saved one as long as the library
versions match (a mismatch is warned about: numeric kernels can change between releases).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matfuse.models.target import TargetModel

if TYPE_CHECKING:
    from matfuse.models.estimator import PropertyEstimator

__all__ = [
    "ALLOWED_MODULE_PREFIXES",
    "CONFIG_NAME",
    "UnsafeModelError",
    "check_trusted_types",
    "load_estimator",
    "save_estimator",
]

CONFIG_NAME = "config.json"
FORMAT_NAME = "matfuse.models.PropertyEstimator"
FORMAT_VERSION = 1

#: Packages whose classes a saved model may instantiate.
ALLOWED_MODULE_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "mapie.",
    "matfuse.",
    "xgboost.",
    "lightgbm.",
)
#: Builtin/stdlib types allowed by exact name (plain containers only, never callables).
ALLOWED_EXACT_TYPES: frozenset[str] = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "builtins.bytes",
        "builtins.bytearray",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.deque",
    }
)

_BOOSTER_REF = "matfuse-external-booster:"
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


class UnsafeModelError(ValueError):
    """A saved model would instantiate a type outside the allowlist, or failed integrity checks."""


def _resolve(name: str) -> Any:
    """Import ``pkg.module.Attr`` by trying the longest importable module prefix."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def check_trusted_types(type_names: list[str]) -> None:
    """Raise :class:`UnsafeModelError` unless every name is an allowed class.

    A name is allowed if it is one of :data:`ALLOWED_EXACT_TYPES`, or if it starts with one of
    :data:`ALLOWED_MODULE_PREFIXES` *and* resolves to a class. Importing to check is acceptable
    because only modules of those already-trusted packages are ever imported.
    """
    refused: list[str] = []
    for name in type_names:
        if name in ALLOWED_EXACT_TYPES:
            continue
        if name.startswith(ALLOWED_MODULE_PREFIXES) and isinstance(_resolve(name), type):
            continue
        refused.append(name)
    if refused:
        raise UnsafeModelError(
            f"refusing to load: the file would instantiate disallowed types {sorted(refused)}; "
            f"only classes from {ALLOWED_MODULE_PREFIXES} and builtin containers are accepted"
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


def _attach_boosters(root: Any, directory: Path, allowed_files: set[str]) -> None:
    """Replace booster references under ``root`` with models loaded from their native files."""
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
            if isinstance(obj, xgb.XGBModel):
                booster = xgb.Booster()
                booster.load_model(str(directory / name))
                if obj.n_jobs is not None:
                    booster.set_param({"nthread": obj.n_jobs})
            else:
                booster = lgb.Booster(model_file=str(directory / name))
            loaded[name] = booster
        obj._Booster = loaded[name]


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
    """Save a fitted estimator into ``directory`` (created if needed) and return it.

    Refuses a non-empty directory unless ``overwrite=True``, in which case only the files of a
    previous matfuse save (as listed in its ``config.json``) are replaced.
    """
    import skops.io as sio
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "target_models_")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / CONFIG_NAME
    if any(directory.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{directory} is not empty; pass overwrite=True to replace")
        if config_path.exists():
            previous = json.loads(config_path.read_text())
            for name in previous.get("files", {}):
                (directory / Path(name).name).unlink(missing_ok=True)
            config_path.unlink()

    params_json = json.dumps(est.get_params(deep=False), default=_json_default)
    targets: list[dict[str, Any]] = []
    files: dict[str, dict[str, str]] = {}
    for j, target_model in enumerate(est.target_models_):
        stem = f"target_{j}"
        components = target_model.components()
        with _boosters_detached(components, directory, stem) as booster_files:
            sio.dump(components, directory / f"{stem}.skops")
        for name in booster_files:
            kind = "xgboost-json" if name.endswith(".json") else "lightgbm-text"
            files[name] = {"kind": kind, "sha256": _sha256(directory / name)}
        files[f"{stem}.skops"] = {"kind": "skops", "sha256": _sha256(directory / f"{stem}.skops")}
        targets.append(
            {
                "task": target_model.task,
                "model": target_model.model_name,
                "uncertainty": target_model.uncertainty,
                "conformal_method": target_model.conformal_method,
                "y_center": target_model.y_center,
                "y_scale": target_model.y_scale,
                "components": f"{stem}.skops",
                "boosters": booster_files,
            }
        )
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "params": json.loads(params_json),
        "n_features_in": int(est.n_features_in_),
        "n_targets": int(est.n_targets_),
        "task_types": list(est.task_types_),
        "tuned_params": json.loads(json.dumps(est.tuned_params_, default=_json_default)),
        "targets": targets,
        "versions": _versions(),
        "files": files,
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def _read_config(directory: Path) -> dict[str, Any]:
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: not a saved matfuse estimator")
    config: dict[str, Any] = json.loads(config_path.read_text())
    if config.get("format") != FORMAT_NAME:
        raise ValueError(f"{config_path} is not a {FORMAT_NAME} file")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"unsupported format_version {config.get('format_version')!r}; "
            f"this matfuse reads version {FORMAT_VERSION}"
        )
    for name, entry in config["files"].items():
        if Path(name).name != name:
            raise UnsafeModelError(f"file name {name!r} in config escapes the model directory")
        if _sha256(directory / name) != entry["sha256"]:
            raise UnsafeModelError(f"{name} does not match its sha256 in config.json")
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
    """Load an estimator saved by :func:`save_estimator`, refusing disallowed types."""
    import skops.io as sio

    from matfuse.models.estimator import PropertyEstimator

    directory = Path(directory)
    config = _read_config(directory)
    listed = set(config["files"])
    target_models: list[TargetModel] = []
    for entry in config["targets"]:
        name = entry["components"]
        if name not in listed:
            raise UnsafeModelError(f"{name} is not listed in config files")
        data = (directory / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != config["files"][name]["sha256"]:
            raise UnsafeModelError(f"{name} changed while loading")
        untrusted = sio.get_untrusted_types(data=data)
        check_trusted_types(untrusted)
        components = sio.loads(data, trusted=untrusted)
        _attach_boosters(components, directory, listed)
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
    return est
