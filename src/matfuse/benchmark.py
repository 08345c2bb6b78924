"""Compare representations on one dataset: each encoder alone and the fused set, same split.

The same function serves ``matfuse benchmark``, ``matfuse demo``, the MoleculeNet benchmark
script, the Python API (``evaluate_single``/``evaluate_fused``) and the web UI. Features are
computed once per encoder for all rows and reused by every model, which is what makes a
side-by-side comparison affordable on a laptop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from matfuse.chem.duplicates import find_leakage
from matfuse.chem.standardize import ParsedMolecules
from matfuse.evaluate import HIGHER_IS_BETTER, evaluate_targets, make_splitter, primary_metric
from matfuse.fusion.late import compute_blocks
from matfuse.inputs import check_encoders, default_encoders, input_kind_of, load_input_table
from matfuse.io.readers import read_table
from matfuse.io.table import MoleculeTable
from matfuse.pipeline import PropertyModel

if TYPE_CHECKING:
    from matfuse.materials.table import MaterialTable, ParsedMaterials

FUSED = "fused"


@dataclass
class SplitData:
    """Inputs, labels and the train/valid/test row indices of one experiment.

    ``parsed`` holds molecules, compositions or structures, as ``input_type`` says.
    """

    parsed: ParsedMolecules | ParsedMaterials
    Y: np.ndarray
    target_names: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    split_name: str
    notes: dict[str, Any] = field(default_factory=dict)
    input_type: str = "molecule"

    @property
    def keys(self) -> list[str | None]:
        """Identity of each row's input: canonical SMILES, reduced formula or structure hash."""
        if isinstance(self.parsed, ParsedMolecules):
            return list(self.parsed.canonical)
        return list(getattr(self.parsed, "keys", self.parsed.formulas))

    @property
    def fit_rows(self) -> np.ndarray:
        """Rows used for fitting: train and valid (no model selection uses valid here)."""
        return np.concatenate([self.train, self.valid])


def load_dataset(
    path: str | Path,
    targets: Sequence[str] | None = None,
    smiles_col: str | None = None,
    split: str = "auto",
    seed: int = 0,
    input_type: str | None = None,
    input_col: str | None = None,
    **split_params: Any,
) -> SplitData:
    """Load a dataset file or a directory with ``train/valid/test.csv`` and split it.

    ``split="auto"`` keeps the provided files when a directory holds them (``predefined``)
    and otherwise makes a random split. Any other splitter name re-splits all rows.
    The inputs may be molecules, compositions or structures (``input_type``, detected
    when ``None``); ``smiles_col`` is the older name of ``input_col``.
    """
    path = Path(path)
    input_col = input_col or smiles_col
    frames: list[pd.DataFrame] = []
    labels: list[str] = []
    if path.is_dir():
        for part in ("train", "valid", "val", "test"):
            for ext in (".csv", ".csv.gz", ".parquet", ".sdf"):
                f = path / f"{part}{ext}"
                if f.exists():
                    frame = read_table(f)
                    frames.append(frame)
                    labels += ["valid" if part == "val" else part] * len(frame)
                    break
        if not frames:
            raise FileNotFoundError(f"{path} holds no train/valid/test files")
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = read_table(path)
    table = load_input_table(
        frame, input_type=input_type, input_col=input_col, targets=_targets(frame, targets)
    )
    return split_table(table, split=split, provided=labels or None, seed=seed, **split_params)


def _targets(frame: pd.DataFrame, targets: Sequence[str] | None) -> list[str]:
    if targets:
        return list(targets)
    raise ValueError(
        "name the target column(s) with --target; numeric columns: "
        f"{[c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]}"
    )


def split_table(
    table: MoleculeTable | MaterialTable,
    split: str = "auto",
    provided: Sequence[str] | None = None,
    seed: int = 0,
    **split_params: Any,
) -> SplitData:
    """Split a validated table; ``provided`` holds per-row train/valid/test labels if any.

    Molecule tables accept the splitters of :mod:`matfuse.evaluate.splitters`; material
    tables those of :mod:`matfuse.materials.splitters` (``spacegroup``, ``element``,
    ``chemsys`` besides ``random``/``ood``/``predefined``).
    """
    Y = table.target_matrix()
    kind = input_kind_of(table)
    if split == "auto":
        split = "predefined" if provided is not None else "random"
    if split == "predefined":
        if provided is None:
            raise ValueError("split 'predefined' needs train/valid/test files")
        split_params = {"labels": list(provided)}
    elif split != "ood":
        split_params.setdefault("seed", seed)
    if kind == "molecule":
        splitter = make_splitter(split, **split_params)
        parts = splitter.split(table.parsed.canonical, Y)
    else:
        from matfuse.materials.splitters import make_material_splitter

        splitter = make_material_splitter(split, **split_params)
        parts = splitter.split(table.parsed, Y)
    if len(parts.test) == 0:
        raise ValueError(f"the {split!r} split left no test rows; use another split or more data")
    data = SplitData(
        parsed=table.parsed,
        Y=Y,
        target_names=list(table.targets),
        train=np.asarray(parts.train),
        valid=np.asarray(parts.valid),
        test=np.asarray(parts.test),
        split_name=split,
        input_type=kind,
    )
    keys = data.keys
    leaks = find_leakage([keys[i] for i in data.fit_rows], [keys[i] for i in data.test])
    noun = "molecules" if kind == "molecule" else f"{kind}s"
    data.notes = {f"leaked_test_{noun}": len(leaks), "invalid_rows": table.parsed.n_invalid}
    return data


def compare_representations(
    data: SplitData,
    encoders: Sequence[str] | None = None,
    model: str = "auto",
    fused_sets: dict[str, Sequence[str]] | None = None,
    blocks: dict[str, np.ndarray] | None = None,
    model_params: dict[str, Any] | None = None,
    random_state: int = 0,
    progress: bool = True,
    include_single: bool = True,
    uncertainty: str = "none",
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Fit each encoder alone and each fused set on the same split; score on the test rows.

    Uncertainty is off by default: conformal calibration refits the model several times and
    the comparison only needs point predictions.

    Returns ``{"representations": {name: {"encoders", "metrics", "fit_seconds"}}, ...}``
    where ``metrics`` is the output of :func:`matfuse.evaluate.evaluate_targets`.
    """
    encoders = list(encoders or default_encoders(data.input_type))
    check_encoders(encoders, data.input_type)
    if fused_sets is None:
        fused_sets = {FUSED: encoders} if len(encoders) > 1 else {}
    needed = sorted(set(encoders) | {e for s in fused_sets.values() for e in s})
    if blocks is None:
        blocks = encode_all(data.parsed, needed, progress=progress)
    runs = {name: [name] for name in encoders} if include_single else {}
    runs |= {k: list(v) for k, v in fused_sets.items()}
    results: dict[str, Any] = {}
    fit = data.fit_rows
    for name, members in tqdm(runs.items(), desc="models", disable=not progress):
        start = time.perf_counter()
        pm = PropertyModel(
            encoders=members,
            model=model,
            model_params=model_params,
            uncertainty=uncertainty,
            random_state=random_state,
            n_jobs=n_jobs,
            input_type=data.input_type,
        )
        pm.fit_blocks({e: blocks[e][fit] for e in members}, data.Y[fit], data.target_names)
        pred = pm.predict_blocks({e: blocks[e][data.test] for e in members})
        results[name] = {
            "encoders": members,
            "metrics": evaluate_targets(data.Y[data.test], pred, pm.task_types_, data.target_names),
            "fit_seconds": round(time.perf_counter() - start, 2),
            "task_types": pm.task_types_,
        }
    return {
        "split": data.split_name,
        "n_train": int(len(data.train)),
        "n_valid": int(len(data.valid)),
        "n_test": int(len(data.test)),
        "targets": data.target_names,
        "model": model,
        "notes": data.notes,
        "representations": results,
    }


def fit_and_report(
    model: PropertyModel, data: SplitData, report_dir: Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Fit ``model`` on the fit rows of ``data``, then write the test report with plots.

    The one place where "train, predict the held-out rows, report" is spelled out, shared
    by ``matfuse train``, the demo and the web UI.
    """
    from matfuse.evaluate import write_report

    fit_rows = data.fit_rows
    model.fit(data.parsed.subset(fit_rows), data.Y[fit_rows], data.target_names)
    test = data.parsed.subset(data.test)
    res = model.predict_with_uncertainty(model.blocks(test))
    return write_report(
        report_dir,
        target_names=data.target_names,
        task_types=model.task_types_,
        Y_true=data.Y[data.test],
        Y_pred=res["pred"],
        Y_std=res["std"],
        intervals=res["interval"],
        test_smiles=test.canonical if data.input_type == "molecule" else None,
        train_smiles=(
            [data.parsed.canonical[i] for i in fit_rows] if data.input_type == "molecule" else None
        ),
        split_name=data.split_name,
        extra={"notes": data.notes, **(extra or {})},
    )


def encode_all(
    parsed: ParsedMolecules | ParsedMaterials, encoders: Sequence[str], progress: bool = True
) -> dict[str, np.ndarray]:
    """Compute every encoder's block for all rows once."""
    out: dict[str, np.ndarray] = {}
    for name in tqdm(list(encoders), desc="encoders", disable=not progress):
        out[name] = compute_blocks([name], parsed)[name].values
    return out


def headline(result: dict[str, Any], metric: str | None = None) -> dict[str, float]:
    """One number per representation: the mean of the primary metric over targets."""
    out: dict[str, float] = {}
    for name, rep in result["representations"].items():
        kind = rep["task_types"][0]
        key = metric or primary_metric(kind)[0]
        out[name] = float(rep["metrics"]["mean"][kind][key])
    return out


def comparison_frame(result: dict[str, Any], metric: str | None = None) -> pd.DataFrame:
    """Representations as rows, the headline metric as a column, best first."""
    scores = headline(result, metric)
    first = next(iter(result["representations"].values()))
    kind = first["task_types"][0]
    key, higher = primary_metric(kind) if metric is None else (metric, HIGHER_IS_BETTER[metric])
    frame = pd.DataFrame(
        {
            "representation": list(scores),
            "modalities": ["+".join(result["representations"][n]["encoders"]) for n in scores],
            key: list(scores.values()),
            "fit_seconds": [result["representations"][n]["fit_seconds"] for n in scores],
        }
    )
    return frame.sort_values(key, ascending=not higher).reset_index(drop=True)
