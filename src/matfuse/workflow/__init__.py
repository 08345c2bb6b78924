"""The workflow layer: load, split, fit and report, compare, cross-validate.

What the CLI, the demo, the web UI, the Python API and the benchmark scripts all call, so
that "train and evaluate" means the same thing everywhere. Results are dataclasses
(:mod:`matfuse.workflow.results`) that serialise to the report JSON.
"""

from matfuse.workflow.compare import FUSED, compare_representations, comparison_frame, encode_all
from matfuse.workflow.cv import cross_validate
from matfuse.workflow.data import SplitData, SplitNotApplicableError, load_dataset, split_table
from matfuse.workflow.fit import fit_and_report
from matfuse.workflow.results import Comparison, CrossValidation, FoldResult, RepresentationResult

__all__ = [
    "FUSED",
    "Comparison",
    "CrossValidation",
    "FoldResult",
    "RepresentationResult",
    "SplitData",
    "SplitNotApplicableError",
    "compare_representations",
    "comparison_frame",
    "cross_validate",
    "encode_all",
    "fit_and_report",
    "load_dataset",
    "split_table",
]
