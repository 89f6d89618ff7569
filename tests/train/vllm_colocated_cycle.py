"""Driver of tests/train/test_vllm_rollouts.py: rollout -> update -> reload -> rollout with real vLLM.

Run as a script (vLLM may spawn processes, so the work sits under ``__main__``), with a Python that
has vLLM: ``PYTHONPATH=src python tests/train/vllm_colocated_cycle.py OUT_DIR``. The last line of its
output is a JSON object the test reads.
"""

from __future__ import annotations

import contextlib
import json
import sys

# vLLM's CPU wheels can pull in GPU builds of torchvision/torchaudio/torchcodec that fail to load;
# the toy policy needs none of them, and transformers imports them only when they can be found.
for _name in ("torchvision", "torchaudio", "torchcodec"):
    sys.modules[_name] = None  # type: ignore[assignment]

import torch  # noqa: E402

from justrl.data import toy  # noqa: E402
from justrl.generate.colocate import ColocatedVLLM  # noqa: E402
from justrl.generate.hf import SamplingParams  # noqa: E402

TINY = toy.ToyModelConfig()  # head size 32: vLLM's CPU attention refuses 16


def recomputed(model, prompt: list[int], response: list[int], temperature: float) -> list[float]:
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None]).squeeze(-1).tolist()


def worst_gap(model, prompts, completions, temperature: float) -> float:
    return max(abs(a - b) for p, c in zip(prompts, completions)
               for a, b in zip(c.logprobs, recomputed(model, p, c.token_ids, temperature)))


def main(out_dir: str) -> None:
    tokenizer = toy.build_tokenizer()
    policy = toy.build_model(tokenizer, TINY, seed=3)
    policy.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    engine = ColocatedVLLM(out_dir, device_type="cpu", dtype="float32", max_model_len=64, seed=0,
                           enforce_eager=True)
    prompts = [tokenizer(toy.chat_prompt(tokenizer, t), add_special_tokens=False)["input_ids"]
               for t in ("1+2+3=?", "4+5+6=?", "7+8+9=?", "1+1+1=?")]
    params = SamplingParams(temperature=0.8, top_p=1.0, max_new_tokens=12)
    seeds = [11, 12, 13, 14]
    before = engine.generate_from_ids(prompts, params, seeds)
    again = engine.generate_from_ids(prompts, params, seeds)

    engine.sleep()  # the update: a real optimizer step that raises the first rollouts' likelihood
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-2)
    ids = torch.tensor([prompts[0] + before[0].token_ids])
    loss = -torch.log_softmax(policy(input_ids=ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None]).mean()
    loss.backward()
    optimizer.step()
    policy.eval()
    engine.load_weights(policy)
    after = engine.generate_from_ids(prompts, params, seeds)

    result = {
        "gap_before": worst_gap(toy.build_model(tokenizer, TINY, seed=3).eval(), prompts, before, 0.8),
        "gap_after": worst_gap(policy, prompts, after, 0.8),
        "gap_after_vs_old_policy": worst_gap(toy.build_model(tokenizer, TINY, seed=3).eval(), prompts, after, 0.8),
        "same_seeds_same_tokens": [a.token_ids for a in before] == [b.token_ids for b in again],
        "tokens_changed": [a.token_ids for a in before] != [b.token_ids for b in after],
        "lengths": [len(c.token_ids) for c in before + after],
        "finish_reasons": sorted({c.finish_reason for c in before + after}),
        "events": engine.events,
        "asleep": engine.asleep,
    }
    engine.close()
    print(json.dumps(result), flush=True)


class _Stop(Exception):
    """Ends the run after its last step's metrics (the final plots need matplotlib, not needed here)."""


def train(out_dir: str) -> None:
    """Two native GRPO steps of the CPU demo with ``rollout_backend=vllm``."""
    from justrl import recipe as R
    from justrl.train import loop as trainer

    recipe = R.load("toy", {"rollout_backend": "vllm", "total_steps": 2, "prompts_per_step": 8,
                            "mini_batch_prompts": 4, "val_before_train": False, "val_every": 100,
                            "save_every": 100, "loggers": ["jsonl"]})
    seen: list[dict] = []

    def on_step(step: int, values: dict) -> None:
        seen.append(values)
        if step == recipe.total_steps:
            raise _Stop()

    with contextlib.suppress(_Stop):
        trainer.train(recipe, out_dir, console=False, on_step=on_step)
    print(json.dumps({"steps": len(seen), "logprob_diff": [v["rollout/logprob_diff"] for v in seen],
                      "grad_norm": [v["actor/grad_norm"] for v in seen]}), flush=True)


if __name__ == "__main__":
    (train if "--train" in sys.argv else main)(sys.argv[1])
