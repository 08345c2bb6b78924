"""Shotgun transfer: try every source, frozen and fine-tuned, and pick by cross-validation.

Which source helps a small target cannot be known in advance (Yamada et al. 2019 found
useful sources among physically unrelated properties), so every candidate is scored by
``cv``-fold MAE on the target itself:

* ``frozen:<source>`` — the ``transfer`` encoder of that source + the default model
  (``auto``: a random forest below 200 rows, XGBoost above), as ``matfuse train`` would fit;
* ``frozen:all`` — every usable source's embedding concatenated + the default model;
* ``finetune:<source>`` — the source net fine-tuned (``transfer-mlp``);
* ``scratch`` — composition features + the default model (no transfer), with
  ``include_scratch=True``, so that shotgun can also decide that no source helps.

Sources built from the target's own data are excluded first (:func:`check_leakage`). The
winner is refitted on every row and returned as an ordinary
:class:`~matfuse.pipeline.PropertyModel`, which saves and loads like any other.

>>> res = shotgun((formulas, y), load_library(), cv=5)  # doctest: +SKIP
>>> res.best, res.model.predict(["SiO2"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.model_selection import KFold

from matfuse.models.threads import torch_threads
from matfuse.transfer.features import CompositionRow, composition_features
from matfuse.transfer.library import (
    SourceLibrary,
    check_leakage,
    load_library,
    resolve_library_path,
    split_names,
)

logger = logging.getLogger(__name__)

__all__ = ["Candidate", "ShotgunResult", "shotgun"]

MODES: tuple[str, ...] = ("frozen", "finetune")


@dataclass
class Candidate:
    """One configuration tried: its name, mode, source and CV MAE (mean and fold std)."""

    name: str
    mode: str
    source: str | None
    cv_mae: float
    cv_std: float
    cpu_s: float


@dataclass
class ShotgunResult:
    """Every candidate's CV score, the pick, the exclusions and the refitted winner."""

    candidates: list[Candidate]
    best: str
    excluded: dict[str, str]
    model: Any = field(repr=False)
    n_rows: int = 0
    cpu_s: float = 0.0
    sources: list[str] = field(default_factory=list)
    refitter: Callable[[Candidate, str], Any] | None = field(default=None, repr=False)

    def refit(self, name: str, uncertainty: str = "auto") -> Any:
        """Candidate ``name`` fitted on every target row (a PropertyModel)."""
        if self.refitter is None:
            raise ValueError("this result cannot refit (made without its data)")
        by_name = {c.name: c for c in self.candidates}
        if name not in by_name:
            raise ValueError(f"no candidate {name!r}; tried {', '.join(sorted(by_name))}")
        return self.refitter(by_name[name], uncertainty)

    def table(self) -> pd.DataFrame:
        """Candidates sorted by CV MAE."""
        frame = pd.DataFrame([c.__dict__ for c in self.candidates])
        return frame.sort_values("cv_mae").reset_index(drop=True)

    def best_of(self, mode: str) -> Candidate | None:
        """The best candidate of one mode (``frozen``, ``finetune``, ``scratch``)."""
        pool = [c for c in self.candidates if c.mode == mode]
        return min(pool, key=lambda c: c.cv_mae) if pool else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "n_rows": self.n_rows,
            "cpu_s": round(self.cpu_s, 2),
            "excluded": self.excluded,
            "sources": self.sources,
            "candidates": [c.__dict__ for c in sorted(self.candidates, key=lambda c: c.cv_mae)],
        }

    def summary(self, top: int = 5) -> str:
        lines = [f"shotgun transfer on {self.n_rows} rows: picked {self.best}"]
        for name, reason in self.excluded.items():
            lines.append(f"  excluded {name}: {reason}")
        for c in sorted(self.candidates, key=lambda c: c.cv_mae)[:top]:
            lines.append(f"  {c.name:40s} CV MAE {c.cv_mae:.4g} ± {c.cv_std:.2g}")
        return "\n".join(lines)


def _encoder_spec(sources: str, library: str | None, exclude: Sequence[str] = ()) -> str:
    spec = f"transfer:sources={sources}"
    if exclude:
        spec += ":exclude=" + "+".join(exclude)
    if library is not None:
        spec += f":library={library}"
    return spec


def _default_model(
    spec: str,
    random_state: int,
    uncertainty: str,
    model: str = "auto",
    params: dict[str, Any] | None = None,
) -> Any:
    from matfuse.pipeline import PropertyModel

    return PropertyModel(
        encoders=[spec],
        model=model,
        input_type="composition",
        uncertainty=uncertainty,
        random_state=random_state,
        model_params=params,
    )


def _finetune_model(source: str, library: str | None, random_state: int) -> Any:
    from matfuse.pipeline import PropertyModel

    # the shotgun checked leakage on the whole target: its CV folds must not re-judge it
    params: dict[str, Any] = {"source": source, "leakage_check": False}
    if library is not None:
        params["library"] = library
    return PropertyModel(
        model="transfer-mlp",
        input_type="composition",
        model_params=params,
        random_state=random_state,
    )


def _cv(
    fit_predict: Any,
    n: int,
    folds: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
    y: NDArray[np.float64],
) -> tuple[float, float, float]:
    """Mean and std over folds of the MAE, and the CPU seconds it took."""
    cpu = time.process_time()
    maes = []
    for train, test in folds:
        pred = fit_predict(train, test)
        maes.append(float(np.nanmean(np.abs(pred - y[test]))))
    return float(np.mean(maes)), float(np.std(maes)), time.process_time() - cpu


def shotgun(
    target: Any,
    library: SourceLibrary | str | None = None,
    cv: int = 5,
    *,
    modes: Sequence[str] = MODES,
    include_all: bool = True,
    include_scratch: bool = False,
    exclude: str | Sequence[str] = (),
    uncertainty: str = "auto",
    model: str = "auto",
    screen_params: dict[str, Any] | None = None,
    finetune_top: int | None = None,
    random_state: int = 0,
    n_threads: int = 1,
    refit: bool = True,
) -> ShotgunResult:
    """Score every source on ``target`` by ``cv``-fold MAE and refit the best.

    ``target`` is ``(formulas, y)`` or a table with ``formula`` and ``target`` columns.
    ``library`` is a loaded library, a directory, or ``None`` (the shipped one). ``modes``
    chooses the candidate families; ``uncertainty`` applies to the refitted winner (CV fits
    use none, which is all they need); ``model`` is the model of the frozen candidates
    (``auto``, the default model, unless the caller wants a faster one); ``screen_params``
    are model parameters for the frozen candidates' CV fits only (a cheaper screen, e.g.
    ``{"rf": {"n_estimators": 100}}``), the winner is refitted without them.
    ``finetune_top=k`` fine-tunes only the ``k`` sources whose frozen candidates scored
    best (fine-tuning costs most; ``None``: every source). Rows that cannot
    be featurised or have no label are skipped, never the whole call.
    """
    cpu0 = time.process_time()
    formulas, y = _target(target)
    lib = library if isinstance(library, SourceLibrary) else load_library(library)
    lib_arg = _library_argument(lib)
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown shotgun mode(s) {unknown}; choose from {', '.join(MODES)}")
    keys, X, _ = composition_features(formulas, lib.encoder)
    ok = np.array([k is not None for k in keys]) & np.isfinite(y)
    if ok.sum() < max(5, cv):
        raise ValueError(f"shotgun needs at least {max(5, cv)} rows with a composition and a label")
    if set(np.unique(y[ok])) <= {0.0, 1.0}:
        raise ValueError("shotgun transfer is for regression targets; these labels are 0/1")
    idx = np.flatnonzero(ok)
    keys_ok = [str(keys[i]) for i in idx]
    X, y = X[idx], y[idx]
    leaks = check_leakage(lib, keys_ok, y)
    excluded = {c.source: c.reason for c in leaks if c.leaked}
    for reason in excluded.values():
        logger.warning("excluded: %s", reason)
    usable = [n for n in lib.select("all", split_names(exclude)) if n not in excluded]
    if not usable:
        raise ValueError(
            "no usable transfer source for this target: " + "; ".join(excluded.values())
        )
    folds = list(KFold(cv, shuffle=True, random_state=random_state).split(X))
    rows = np.empty(len(idx), dtype=object)
    rows[:] = [CompositionRow(k, X[i]) for i, k in enumerate(keys_ok)]
    candidates: list[Candidate] = []

    def frozen(spec: str, block: NDArray[Any]) -> None:
        def fit_predict(train: NDArray[np.intp], test: NDArray[np.intp]) -> NDArray[np.float64]:
            m = _default_model(spec, random_state, "none", model, screen_params).fit_blocks(
                {spec: block[train]}, y[train]
            )
            return m.predict_blocks({spec: block[test]})[:, 0]

        name = spec.split(":")[1].split("=")[1] if spec.startswith("transfer") else "composition"
        mode = "frozen" if spec.startswith("transfer") else "scratch"
        label = f"frozen:{name}" if mode == "frozen" else "scratch"
        mean, std, cpu = _cv(fit_predict, len(y), folds, y)
        candidates.append(
            Candidate(label, mode, name if mode == "frozen" else None, mean, std, cpu)
        )

    with torch_threads(n_threads):
        embeddings = {n: lib.sources[n].model.embed(X) for n in usable} if "frozen" in modes else {}
        if include_scratch:
            frozen("composition", X)
        for n, emb in embeddings.items():
            frozen(_encoder_spec(n, lib_arg), emb)
        if "frozen" in modes and include_all and len(usable) > 1:
            frozen(
                _encoder_spec("all", lib_arg, sorted(set(lib.names) - set(usable))),
                np.hstack([embeddings[n] for n in usable]),
            )
        if "finetune" in modes:
            for n in _finetune_sources(usable, candidates, finetune_top):
                tuned = _finetune_model(n, lib_arg, random_state)

                def fit_predict(
                    train: NDArray[np.intp], test: NDArray[np.intp], tuned: Any = tuned
                ) -> NDArray[np.float64]:
                    m = _clone_pm(tuned).fit_blocks({"transfer-mlp": rows[train]}, y[train])
                    return m.predict_blocks({"transfer-mlp": rows[test]})[:, 0]

                mean, std, cpu = _cv(fit_predict, len(y), folds, y)
                candidates.append(Candidate(f"finetune:{n}", "finetune", n, mean, std, cpu))
    best = min(candidates, key=lambda c: c.cv_mae)

    def refitter(cand: Candidate, uncertainty: str) -> Any:
        return refit_candidate(
            cand, lib, lib_arg, X, rows, y, random_state, uncertainty, usable, model
        )

    result = ShotgunResult(
        candidates,
        best.name,
        excluded,
        refitter(best, uncertainty) if refit else None,
        int(len(y)),
        time.process_time() - cpu0,
        usable,
        refitter,
    )
    logger.info("%s", result.summary())
    return result


def _finetune_sources(
    usable: Sequence[str], scored: Sequence[Candidate], top: int | None
) -> list[str]:
    """The sources to fine-tune: all, or the ``top`` best by their frozen CV score."""
    frozen = sorted(
        (c for c in scored if c.mode == "frozen" and c.source in usable), key=lambda c: c.cv_mae
    )
    if top is None or not frozen:
        return list(usable)
    return [str(c.source) for c in frozen[: max(1, int(top))]]


def _library_argument(lib: SourceLibrary) -> str | None:
    """How saved models name ``lib``: ``None`` for the shipped library, else its path."""
    if lib.path is None:
        raise ValueError("save the source library to a directory before shotgun transfer")
    if lib.path.resolve() == resolve_library_path(None).resolve():
        return None
    return str(lib.path)


def _clone_pm(model: Any) -> Any:
    from sklearn.base import clone

    return clone(model)


def refit_candidate(
    cand: Candidate,
    lib: SourceLibrary,
    lib_arg: str | None,
    X: NDArray[Any],
    rows: NDArray[Any],
    y: NDArray[np.float64],
    random_state: int = 0,
    uncertainty: str = "auto",
    usable: Sequence[str] | None = None,
    model: str = "auto",
) -> Any:
    """Fit candidate ``cand`` on all of ``X``/``rows``/``y`` and return the PropertyModel."""
    usable = list(usable) if usable is not None else lib.names
    if cand.mode == "finetune":
        assert cand.source is not None
        tuned = _finetune_model(cand.source, lib_arg, random_state)
        return tuned.fit_blocks({"transfer-mlp": rows}, y)
    if cand.mode == "scratch":
        return _default_model("composition", random_state, uncertainty, model).fit_blocks(
            {"composition": X}, y
        )
    if cand.source == "all":
        spec = _encoder_spec("all", lib_arg, sorted(set(lib.names) - set(usable)))
        block = np.hstack([lib.sources[n].model.embed(X) for n in usable])
    else:
        assert cand.source is not None
        spec = _encoder_spec(cand.source, lib_arg)
        block = lib.sources[cand.source].model.embed(X)
    return _default_model(spec, random_state, uncertainty, model).fit_blocks({spec: block}, y)


def _target(target: Any) -> tuple[list[str], NDArray[np.float64]]:
    if isinstance(target, pd.DataFrame):
        fcol = "formula" if "formula" in target else target.columns[0]
        tcol = "target" if "target" in target else target.columns[-1]
        return [str(v) for v in target[fcol]], pd.to_numeric(
            target[tcol], errors="coerce"
        ).to_numpy(float)
    formulas, y = target
    return [str(v) for v in formulas], np.asarray(y, dtype=np.float64).reshape(-1)
