"""The runtime: evaluates a compiled plan over batches; pure and clock-free.

Layout (each module one job): `evaluator` schedules steps and trigger windows and
builds findings; `streams`/`history` keep per-stream columns (with `where` masks and
key codes computed once at ingest); `keys` maps `by` values to dense codes; `scope`
reads one rule's rows per window and evaluates its condition for every key at once;
`aggregates` are the grouped numpy kernels, `incremental` their sliding shortcuts,
`sketch` the per-tick log histograms of long-window percentiles (no rows kept);
`bulk` decides many steps of a rule at once from counts per (window, key);
`windows`/`triggers` decide when a step or trigger window is due and when a key fires;
`evidence`, `summary`, `occurrences` (explain input) fill in the finding.
"""

from .evaluator import Evaluator

__all__ = ["Evaluator"]
