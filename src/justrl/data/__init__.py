"""Problems and the files they come from: the nine benchmarks, the release's validation rows, the CPU demo's world.

In: problem files (parquet, JSON, JSONL; the benchmark files shipped under ``data/files/``). Out:
:class:`~justrl.data.problems.Problem` lists, benchmark specs with pinned checksums, the published
scores. Imports: the ground floor only.

- ``problems``: :class:`Problem`, reading rows from any file with errors naming file/row/field;
- ``benchmarks``: the paper's nine benchmarks (N, files, SHA-256) and its published scores;
- ``release_data``: the JustRL release's validation rows (``release:NAME``);
- ``toy``: the CPU demo's world -- a synthetic task, a tiny Qwen2 model and a byte-level tokenizer
  built locally, and their warm start. It lives here, not in ``train/``, because evaluation
  (``eval --watch`` of a demo run) and the verl exporter need the demo's model and task too, and
  neither may import the trainer; it needs nothing above the ground floor but ``problems``.
"""

from justrl.data.problems import Problem

__all__ = ["Problem", "benchmarks", "problems", "release_data", "toy"]
