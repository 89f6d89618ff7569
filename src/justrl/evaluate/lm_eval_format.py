"""``justrl eval --format lm-eval``: the evaluation's results as lm-evaluation-harness writes them.

lm-eval's ``EvaluationTracker`` writes, below ``<output_path>/<model name with / as __>/``,
``results_<date>.json`` (``results``, ``configs``, ``versions``, ``n-shot``, ``higher_is_better``,
``n-samples``, ``config``, ``task_hashes``, model and version fields) and, per task,
``samples_<task>_<date>.jsonl`` (one line per document: ``doc_id``, ``doc``, ``target``,
``arguments``, ``resps``, ``filtered_resps``, ``filter``, ``metrics``, the three hashes and each
metric's value). Here the output path is ``OUT/lm-eval``; a task is a benchmark (its file's task
name, e.g. ``aime24``), a document one problem, its one request repeated N times (lm-eval's
``repeats``), ``filtered_resps`` the grader's extracted answers, and the metric ``avg@N`` (the
share of a problem's samples graded right; its mean over problems is the benchmark's score, with
the standard error over problems as ``avg@N_stderr``). Undecided verdicts are left out of a
problem's mean, as in ``grading_results.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from justrl import __version__
from justrl.evaluate import grading
from justrl.evaluate.config import EvalConfig
from justrl.evaluate.plan import BenchmarkPlan
from justrl.evaluate.samples import read_samples
from justrl.io import atomic_write_json, atomic_write_text

FOLDER = "lm-eval"
FILTER = "none"  # lm-eval's name for "no filter": metric keys read "avg@N,none"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_UNSAFE_IN_NAMES = re.compile(r'["<>:/|\\?*\[\]]+')


def sanitized_model_name(model: str) -> str:
    """lm-eval's ``model_name_sanitized``: each run of ``"<>:/|\\?*[]`` in the model name as ``__``."""
    return _UNSAFE_IN_NAMES.sub("__", model) or "model"


def task_name(plan: BenchmarkPlan) -> str:
    return plan.path.name.split("_")[0]


def _stderr(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def _documents(plan: BenchmarkPlan) -> list[dict[str, Any]]:
    """One entry per problem: its samples in seed order, with their verdicts."""
    planned = {r.key for r in plan.requests}
    verdicts = {(v["example_id"], v["seed"]): v for v in grading.read_verdicts(plan.path)}
    by_problem: dict[int, list[dict[str, Any]]] = {}
    for record in read_samples(plan.path):
        key = (int(record["example_id"]), int(record["seed"]))
        if key in planned:
            by_problem.setdefault(key[0], []).append({**record, "verdict": verdicts.get(key)})
    seed_order = {seed: i for i, seed in enumerate(plan.seeds)}
    return [{"example_id": pid, "samples": sorted(samples, key=lambda s: seed_order.get(s["seed"], 0))}
            for pid, samples in sorted(by_problem.items())]


def write(out_dir: Path, plans: list[BenchmarkPlan], config: EvalConfig, settings: dict[str, Any],
          environment: dict[str, Any], started: float) -> list[Path]:
    """Write ``results_<date>.json`` and one ``samples_<task>_<date>.jsonl`` per benchmark; return the paths."""
    folder = out_dir / FOLDER / sanitized_model_name(config.model)
    folder.mkdir(parents=True, exist_ok=True)
    date_id = datetime.now().isoformat().replace(":", "-")
    results: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    task_hashes: dict[str, str] = {}
    written: list[Path] = []
    for plan in plans:
        task = task_name(plan)
        metric = f"avg@{plan.samples_per_problem}"
        problems = dict(enumerate(plan.problems))
        gen_kwargs = {"temperature": config.temperature, "top_p": config.top_p, "max_gen_toks": config.max_tokens,
                      "do_sample": config.temperature > 0, "until": []}
        lines, scores, hashes = [], [], []
        for document in _documents(plan):
            pid = document["example_id"]
            samples = document["samples"]
            problem = problems.get(pid)
            doc = {"problem": problem.prompt if problem else None, "answer": samples[0]["answer"]}
            decided = [s["verdict"] for s in samples if s["verdict"] and not s["verdict"]["undecided"]]
            value = sum(v["correct"] for v in decided) / len(decided) if decided else None
            if value is not None:
                scores.append(value)
            prompt = samples[0]["prompt"]
            entry = {
                "doc_id": pid, "doc": doc, "target": str(samples[0]["answer"]),
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}},
                "resps": [[s["response"] for s in samples]],
                "filtered_resps": [[(s["verdict"] or {}).get("extracted") for s in samples]],
                "filter": FILTER, "metrics": [metric],
                "doc_hash": _hash(json.dumps(doc, ensure_ascii=False, sort_keys=True)),
                "prompt_hash": _hash(prompt), "target_hash": _hash(str(samples[0]["answer"])),
                metric: value,
                "seeds": [s["seed"] for s in samples],
                "correct": [(s["verdict"] or {}).get("correct") for s in samples],
                "undecided": [bool((s["verdict"] or {}).get("undecided")) for s in samples],
            }
            hashes.append(entry["doc_hash"] + entry["prompt_hash"] + entry["target_hash"])
            lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
        path = folder / f"samples_{task}_{date_id}.jsonl"
        atomic_write_text(path, "".join(lines))
        written.append(path)
        results[task] = {"alias": plan.benchmark.name,
                         f"{metric},{FILTER}": sum(scores) / len(scores) if scores else None,
                         f"{metric}_stderr,{FILTER}": _stderr(scores)}
        configs[task] = {
            "task": task, "dataset_path": str(plan.file.path), "test_split": "test", "output_type": "generate_until",
            "doc_to_text": config.prompt, "doc_to_target": "answer", "repeats": plan.samples_per_problem,
            "num_fewshot": 0, "generation_kwargs": gen_kwargs,
            "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"grader": config.grader, "seeds": plan.seeds, "data_sha256": plan.file.sha256,
                         "justrl_file": plan.path.name},
        }
        n_samples[task] = {"original": len(plan.problems), "effective": len(lines)}
        task_hashes[task] = _hash("".join(hashes))
    packages = environment.get("packages", {})
    record = {
        "results": results,
        "group_subtasks": {task: [] for task in results},
        "configs": configs,
        "versions": {task: __version__ for task in results},
        "n-shot": {task: 0 for task in results},
        "higher_is_better": {task: {cfg["metric_list"][0]["metric"]: True} for task, cfg in configs.items()},
        "n-samples": n_samples,
        "config": {
            "model": f"justrl-{config.backend}", "model_args": f"pretrained={config.model}",
            "batch_size": config.samples_per_call(), "device": environment.get("device"),
            "limit": config.limit, "bootstrap_iters": 0, "gen_kwargs": None, "random_seed": config.seed,
            "justrl_settings": settings,
        },
        "git_hash": None,
        "date": started,
        "task_hashes": task_hashes,
        "transformers_version": packages.get("transformers"),
        "lm_eval_version": None,
        "justrl_version": __version__,
        "environment": environment,
        "model_source": config.backend,
        "model_name": config.model,
        "model_name_sanitized": sanitized_model_name(config.model),
        "start_time": started,
        "end_time": time.time(),
        "total_evaluation_time_seconds": str(time.time() - started),
    }
    results_path = folder / f"results_{date_id}.json"
    atomic_write_json(results_path, record, indent=2)
    return [results_path, *written]
