import numpy as np
import pandas as pd

from matfuse.inputs.targets import collinear_columns, guess_target, rank_target_candidates

ESOL_HEADER = [
    "Compound ID",
    "ESOL predicted log solubility in mols per litre",
    "Minimum Degree",
    "Molecular Weight",
    "Number of H-Bond Donors",
    "Number of Rings",
    "Number of Rotatable Bonds",
    "Polar Surface Area",
    "measured log solubility in mols per litre",
    "smiles",
]


def esol_like(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    measured = rng.normal(-3, 2, n)
    return pd.DataFrame(
        {
            "Compound ID": [f"cpd{i}" for i in range(n)],
            ESOL_HEADER[1]: measured + rng.normal(0, 0.8, n),
            "Minimum Degree": rng.integers(1, 3, n),
            "Molecular Weight": rng.uniform(50, 400, n),
            "Number of H-Bond Donors": rng.integers(0, 4, n),
            "Number of Rings": rng.integers(0, 4, n),
            "Number of Rotatable Bonds": rng.integers(0, 8, n),
            "Polar Surface Area": rng.uniform(0, 120, n),
            ESOL_HEADER[8]: measured,
            "smiles": ["C" * (i % 5 + 1) for i in range(n)],
        }
    )


def test_esol_header_measured_wins_and_prediction_is_last():
    frame = esol_like()
    assert list(frame.columns) == ESOL_HEADER
    ranked = rank_target_candidates(frame, exclude=["smiles"])
    assert ranked[0].name == "measured log solubility in mols per litre"
    assert "measured" in ranked[0].reason
    assert ranked[-1].name.startswith("ESOL predicted")
    assert "Compound ID" not in [c.name for c in ranked]
    descriptors = {c.name for c in ranked[1:-1]}
    assert "Molecular Weight" in descriptors and "Polar Surface Area" in descriptors


def test_ids_counters_and_constants_never_candidates():
    frame = pd.DataFrame(
        {
            "Unnamed: 0": range(10),
            "row": range(10),
            "cid": range(100, 110),
            "step": [3, 5, 8, 9, 12, 20, 21, 30, 31, 40],  # monotone integer counter
            "const": [1.0] * 10,
            "value": np.linspace(0, 1, 10)[::-1] + np.r_[0.05, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }
    )
    assert [c.name for c in rank_target_candidates(frame)] == ["value"]
    assert guess_target(frame.drop(columns=["value"])) is None


def test_label_names_rank_above_plain_and_descriptors():
    frame = pd.DataFrame(
        {
            "MW": [1.0, 2.0, 1.5, 3.0],
            "score": [0.3, 0.1, 0.2, 0.9],
            "pIC50": [5.0, 6.1, 7.2, 5.5],
            "y_pred": [1, 2, 3, 2.5],
            "y": [0.0, 1.0, 1.0, 0.0],
        }
    )
    names = [c.name for c in rank_target_candidates(frame)]
    assert names == ["y", "pIC50", "score", "MW", "y_pred"]


def test_collinear_columns_flag_a_leak():
    rng = np.random.default_rng(1)
    y = rng.normal(size=50)
    frame = pd.DataFrame(
        {"y": y, "copy": 2 * y + 0.01 * rng.normal(size=50), "noise": rng.normal(size=50)}
    )
    leaks = collinear_columns(frame, "y")
    assert [c.name for c in leaks] == ["copy"] and leaks[0].r > 0.98
    assert collinear_columns(frame, "y", exclude=["copy"]) == []


def test_a_counter_named_as_the_label_is_still_the_target():
    """`y = 0..n-1` looks like a row number, but its name says it is the label."""
    frame = pd.DataFrame({"smiles": ["C"] * 12, "row": range(12), "y": range(12)})
    assert guess_target(frame, ["smiles"]) == "y"
