"""Load a data set and split it: the first step of every train, benchmark and UI run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matfuse.chem.duplicates import find_leakage
from matfuse.evaluate.splitters import list_splitters, make_splitter
from matfuse.inputs import (
    InputTable,
    detect_columns,
    get_kind,
    kind_names,
    label_problems,
    load_input_table,
    read_table,
)
from matfuse.inputs.targets import collinear_columns, rank_target_candidates

logger = logging.getLogger(__name__)

__all__ = ["SplitData", "load_dataset", "peek_input_type", "split_table"]

#: file stems of a directory that comes pre-split, and the part each one is
_PROVIDED_PARTS = {"train": "train", "valid": "valid", "val": "valid", "test": "test"}
_PROVIDED_EXTENSIONS = (".csv", ".csv.gz", ".tsv", ".parquet", ".sdf")


class SplitNotApplicableError(ValueError):
    """A splitter that cannot read this kind of input (e.g. a scaffold split of formulas)."""

    def __init__(self, split: str, kind: str, choices: list[str]) -> None:
        self.split = split
        self.kind = kind
        self.choices = choices
        super().__init__(
            f"the {split!r} split does not apply to {kind} inputs; choose from {', '.join(choices)}"
        )


@dataclass
class SplitData:
    """Inputs, labels and the train/valid/test row indices of one experiment.

    ``parsed`` is the batch of any input kind (:mod:`matfuse.inputs.batch`);
    ``description`` says in one sentence what the split held out; ``target_info`` how the
    target was chosen (``guessed``, ``reason``, ``others``) and the columns almost collinear
    with each target (``collinear``: a possible label leak).
    """

    parsed: Any
    Y: np.ndarray
    target_names: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    split_name: str
    notes: dict[str, Any] = field(default_factory=dict)
    input_type: str = "molecule"
    description: str = ""
    split_info: dict[str, Any] = field(default_factory=dict)
    target_info: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str | None]:
        """Identity of each row's input: canonical SMILES, reduced formula or structure hash."""
        return list(self.parsed.keys)

    @property
    def fit_rows(self) -> np.ndarray:
        """Rows used for fitting: train and valid (no model selection uses valid here)."""
        return np.concatenate([self.train, self.valid])

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def _read_provided(path: Path) -> tuple[pd.DataFrame, list[str]]:
    frames: list[pd.DataFrame] = []
    labels: list[str] = []
    for stem, part in _PROVIDED_PARTS.items():
        for ext in _PROVIDED_EXTENSIONS:
            f = path / f"{stem}{ext}"
            if f.exists():
                frame = read_table(f)
                frames.append(frame)
                labels += [part] * len(frame)
                break
    if not frames:
        raise FileNotFoundError(f"{path} holds no train/valid/test files")
    return pd.concat(frames, ignore_index=True), labels


def peek_input_type(
    path: str | Path,
    input_type: str | None = None,
    input_col: str | Sequence[str] | None = None,
    rows: int = 200,
) -> str | None:
    """The input kind of a data file (or data directory), judged from its first ``rows``.

    For checking options (encoders, models, splits) before the whole file is read and
    parsed; ``None`` when the first rows do not tell (the full load then says why).
    """
    path = Path(path)
    if path.is_dir():
        found = [
            path / f"{stem}{ext}"
            for stem in _PROVIDED_PARTS
            for ext in _PROVIDED_EXTENSIONS
            if (path / f"{stem}{ext}").exists()
        ]
        if not found:
            return None
        path = found[0]
    try:
        suffixes = "".join(path.suffixes).lower()
        if suffixes.endswith((".csv", ".csv.gz", ".tsv", ".tab")):
            sep = "\t" if ".tsv" in suffixes or ".tab" in suffixes else ","
            frame = pd.read_csv(path, sep=sep, nrows=rows)
        else:
            frame = read_table(path).head(rows)
        cols = [input_col] if isinstance(input_col, str) else list(input_col or [])
        columns = detect_columns(frame, input_type, cols or None)
    except (ValueError, KeyError, TypeError, OSError):
        return None
    return "+".join(columns.values())


def load_dataset(
    path: str | Path,
    targets: Sequence[str] | None = None,
    split: str = "auto",
    seed: int = 0,
    input_type: str | None = None,
    input_col: str | Sequence[str] | None = None,
    smiles_col: str | None = None,
    guess_target: bool = False,
    **split_params: Any,
) -> SplitData:
    """Load a data file or a directory with ``train/valid/test`` files, and split it.

    ``split="auto"`` keeps the provided files when a directory holds them (``predefined``)
    and otherwise makes a random split; any other splitter name re-splits all rows. The
    inputs may be of any registered kind (``input_type``, detected when ``None``), in one
    column or several (``input_col``); ``smiles_col`` is the older name of ``input_col``.
    Without ``targets``, ``guess_target=True`` picks the likeliest numeric column
    (:func:`matfuse.inputs.targets.rank_target_candidates`) and says so in ``target_info``.
    """
    path = Path(path)
    labels: list[str] | None = None
    if path.is_dir():
        frame, labels = _read_provided(path)
    else:
        frame = read_table(path)
    cols = input_col or smiles_col
    guessed: dict[str, Any] = {}
    if not targets and guess_target:
        cols_list = [cols] if isinstance(cols, str) else list(cols or [])
        inputs = detect_columns(frame, input_type, cols_list or None)
        ranked = rank_target_candidates(frame, exclude=list(inputs))
        if ranked:
            targets = [ranked[0].name]
            guessed = {
                "guessed": True,
                "reason": ranked[0].reason,
                "others": [c.name for c in ranked[1:]],
            }
    if not targets:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        raise ValueError(f"name the target column(s); numeric columns: {numeric}")
    table = load_input_table(frame, input_type=input_type, input_col=cols, targets=list(targets))
    data = split_table(table, split=split, provided=labels, seed=seed, **split_params)
    data.target_info = {**guessed, **data.target_info}
    return data


def split_table(
    table: InputTable,
    split: str = "auto",
    provided: Sequence[str] | None = None,
    seed: int = 0,
    **split_params: Any,
) -> SplitData:
    """Split a validated table; ``provided`` holds per-row train/valid/test labels if any.

    The splitter must apply to the table's kind (:func:`list_splitters`); its parameters
    (``element="Fe"``, ``tail="bottom"``, ``cutoff=0.4``...) go in ``split_params``.
    """
    Y = table.target_matrix()
    kind = table.input_type
    if split == "auto":
        split = "predefined" if provided is not None else "random"
    choices = list_splitters(kind)
    if str(split).strip().lower() not in choices:
        raise SplitNotApplicableError(split, kind, choices)
    if split == "predefined":
        if provided is None:
            raise ValueError("split 'predefined' needs train/valid/test files")
        split_params = {"labels": list(provided)}
    elif split != "ood":
        split_params.setdefault("seed", seed)
    splitter = make_splitter(split, **split_params)
    parts = splitter.split(table.parsed, Y)
    if len(parts.test) == 0:
        raise ValueError(
            f"the {split!r} split left no test rows ({splitter.describe(parts)}); use another "
            "split, other split parameters or more data"
        )
    data = SplitData(
        parsed=table.parsed,
        Y=Y,
        target_names=list(table.targets),
        train=np.asarray(parts.train),
        valid=np.asarray(parts.valid),
        test=np.asarray(parts.test),
        split_name=split,
        input_type=kind,
        description=splitter.describe(parts),
        split_info={"params": _jsonable(splitter.get_params()), **parts.info},
    )
    data.target_info = {"collinear": _collinear(table)}
    keys = data.keys
    leaks = find_leakage([keys[i] for i in data.fit_rows], [keys[i] for i in data.test])
    data.notes = {
        f"leaked_test_{_plural(kind)}": len(leaks),
        "invalid_rows": table.parsed.n_invalid,
        "unusable_labels": label_problems(table.frame, table.targets),
    }
    logger.info("%s", data.description)
    return data


def _collinear(table: InputTable) -> dict[str, list[dict[str, Any]]]:
    """Per target, the other numeric columns with ``|r| >= 0.98`` (a possible label leak)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for target in table.targets:
        others = [t for t in table.targets if t != target] + list(table.columns)
        found = collinear_columns(table.frame, target, exclude=others)
        if found:
            out[target] = [{"column": c.name, "r": round(c.r, 4)} for c in found]
    return out


def _plural(kind: str) -> str:
    names = kind_names(kind)
    return get_kind(names[0]).plural if len(names) == 1 else "inputs"


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if k in ("labels", "space_groups"):
            continue  # per-row data, not a setting
        out[k] = v if isinstance(v, str | int | float | bool | type(None)) else str(v)
    return out
