"""Watching a run: step metrics and their sinks, health alarms, figures, compute accounting.

In: metric rows (from the trainer as it runs, or read back from ``metrics.jsonl``, verl's file
logger or TensorBoard events). Out: sinks' files, alarms, PNG figures, token/FLOP/GPU-hour tables.
Imports: the ground floor and ``data``.

- ``metrics``: the metric sinks (console, JSONL, TensorBoard, W&B) and the health alarms;
- ``plots``: reading metric logs and drawing the paper's three curves (entropy, reward, length);
- ``budget``: tokens, FLOPs and GPU-hours of a recipe, beside the paper's own accounting.
"""

__all__ = ["budget", "metrics", "plots"]
