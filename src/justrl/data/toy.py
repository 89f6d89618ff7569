"""The CPU demo's world: a tiny Qwen2 model, a local tokenizer, an arithmetic task, a warm start.

Everything here is made on the spot, nothing is downloaded:

- :func:`build_tokenizer`: a byte-level BPE tokenizer of the Qwen2 kind with a 264-token vocabulary
  and a chat template, so it saves and loads like any hub tokenizer.
- :func:`build_model`: a randomly initialised ``Qwen2ForCausalLM`` (the architecture of
  DeepSeek-R1-Distill-Qwen-1.5B, only tiny).
- :func:`make_problems`: the 1,000 sums of three digits (``3+9+4=?``) whose answer goes in
  ``\\boxed{}``; a fixed split keeps 200 of them out of training, to measure generalisation.
- :func:`warm_start`: a brief supervised fine-tune so that the policy is *sometimes* right (RL
  cannot start from zero reward). The result is cached on disk, keyed by every setting that shaped
  it, so a second run loads it in a second.

:func:`prepare` ties them together and returns the directory of a model that loads through the
same ``from_pretrained`` path as any Hugging Face model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from justrl import io, logs
from justrl.data.problems import Problem

log = logs.get(__name__)

TOY_SOURCE = "toy-arithmetic"
"""The name that selects the synthetic task as ``train_data`` / ``val_data``."""
TOY_MODEL = "toy"
"""The name that selects the tiny model (with its warm start) as the recipe's ``model``."""

EOS, USER, ASSISTANT = "<|endoftext|>", "<|user|>", "<|assistant|>"
BOXED = "\\boxed{"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT + "{{ message['content'] }}" + EOS +
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)
"""One user turn then the assistant's marker: ``<|user|>12+34=?<|assistant|>``."""


# --- the task -------------------------------------------------------------------------------------

TEST_FRACTION = 0.2
"""Share of all problems held out for validation (never trained on, warm start included)."""


def _all_problems() -> list[Problem]:
    return [Problem(f"{a}+{b}+{c}", f"{a}+{b}+{c}=?", str(a + b + c), TOY_SOURCE)
            for a in range(10) for b in range(10) for c in range(10)]


def make_problems(split: str = "train") -> list[Problem]:
    """All problems of ``split`` ("train" or "test"), in a fixed order (the split never changes)."""
    if split not in ("train", "test"):
        raise ValueError(f"toy split must be 'train' or 'test', got {split!r}")
    problems = _all_problems()
    random.Random(0).shuffle(problems)
    n_test = int(len(problems) * TEST_FRACTION)
    return problems[:n_test] if split == "test" else problems[n_test:]


def response_for(problem: Problem) -> str:
    """The reference response the warm start imitates."""
    return f"{BOXED}{problem.ground_truth}}}"


# --- tokenizer and model --------------------------------------------------------------------------

def build_tokenizer():
    """A byte-level BPE ``Qwen2Tokenizer`` (256 bytes + ``\\boxed``) with a chat template.

    It is the class ``AutoTokenizer`` picks for every Qwen2 model (transformers 5 forces it for the
    ``qwen2`` model type), with the same pre-tokenizer, so the demo's tokenizer saves and loads
    exactly like DeepSeek-R1-Distill-Qwen's, only with a tiny vocabulary. Digits are single tokens.
    """
    from tokenizers import pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    symbols = [EOS, USER, ASSISTANT, *sorted(pre_tokenizers.ByteLevel.alphabet())]
    vocab = {tok: i for i, tok in enumerate(symbols)}
    merges = []
    word = "\\"
    for ch in "boxed":  # "\\boxed" becomes one token, as in Qwen's vocabulary
        merges.append((word, ch))
        word += ch
        vocab[word] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token=EOS, pad_token=EOS,
                               extra_special_tokens=[USER, ASSISTANT], model_max_length=512)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@dataclass(frozen=True)
class ToyModelConfig:
    """Size of the tiny Qwen2 model (a few hundred thousand parameters)."""

    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 128


def build_model(tokenizer, config: ToyModelConfig = ToyModelConfig(), seed: int = 0):
    """A randomly initialised ``Qwen2ForCausalLM`` of ``config``'s size for ``tokenizer``'s vocabulary."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    qwen_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(qwen_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


# --- the supervised warm start --------------------------------------------------------------------

@dataclass(frozen=True)
class WarmStart:
    """Settings of the supervised warm start (all of them key the cache)."""

    steps: int = 60
    """Optimizer steps; few enough that the policy is right only some of the time (~10%)."""
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0


TOY_VERSION = 2
"""Bump when the task, tokenizer or training code changes, so that old caches are not reused."""


def cache_root() -> Path:
    """``$JUSTRL_CACHE`` or ``$XDG_CACHE_HOME/justrl`` or ``~/.cache/justrl``."""
    if os.environ.get("JUSTRL_CACHE"):
        return Path(os.environ["JUSTRL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "justrl"


def _cache_key(config: ToyModelConfig, warm: WarmStart) -> str:
    blob = json.dumps({"v": TOY_VERSION, "model": asdict(config), "warm": asdict(warm)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def warm_start(model, tokenizer, warm: WarmStart = WarmStart(),
               progress: Callable[[int, int, float], None] | None = None) -> list[float]:
    """Supervised fine-tune on the train split's reference responses (loss on response tokens).

    Returns the loss of every step. ``progress(step, steps, loss)`` is called after each step.
    """
    problems = make_problems("train")
    rng = random.Random(warm.seed)
    torch.manual_seed(warm.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=warm.lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(warm.steps):
        batch = rng.sample(problems, warm.batch_size)
        prompts = [chat_prompt(tokenizer, p.prompt) for p in batch]
        prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        response_ids = [tokenizer(response_for(p), add_special_tokens=False)["input_ids"]
                        + [tokenizer.eos_token_id] for p in batch]
        width = max(len(p) + len(r) for p, r in zip(prompt_ids, response_ids))
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (p, r) in enumerate(zip(prompt_ids, response_ids)):
            seq = p + r
            start = width - len(seq)  # left padding, as generation sees it
            input_ids[i, start:] = torch.tensor(seq)
            labels[i, start + len(p):] = torch.tensor(r)
            attention[i, start:] = 1
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                    labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
        if progress:
            progress(step + 1, warm.steps, losses[-1])
    model.eval()
    return losses


def chat_prompt(tokenizer, prompt: str) -> str:
    """``prompt`` as one user turn through the tokenizer's chat template."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                         add_generation_prompt=True, tokenize=False)


def prepare(config: ToyModelConfig = ToyModelConfig(), warm: WarmStart = WarmStart(),
            cache_dir: str | Path | None = None,
            progress: Callable[[int, int, float], None] | None = None) -> Path:
    """Directory of the warm-started toy model and tokenizer (built and cached on first use).

    The directory is written aside and published whole (``justrl.io``), so a run killed while
    warming up never leaves a half-written model behind; of two runs racing, the first one to
    publish wins and the other's copy is discarded.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "toy"
    target = root / _cache_key(config, warm)
    if (target / "config.json").is_file():
        log.info("toy model: using the cached warm start in %s", target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.info("toy model: warm start (%d supervised steps), cached in %s", warm.steps, target)
    t0 = time.perf_counter()
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, config, seed=warm.seed)
    with torch.random.fork_rng():
        losses = warm_start(model, tokenizer, warm, progress)
    staged = io.staging_path(target)
    model.save_pretrained(staged)
    tokenizer.save_pretrained(staged)
    io.atomic_write_json(staged / "warm_start.json", {
        "model": asdict(config), "warm_start": asdict(warm), "final_loss": losses[-1],
        "seconds": round(time.perf_counter() - t0, 1)})
    try:
        if (target / "config.json").is_file():  # another run got there first
            shutil.rmtree(staged, ignore_errors=True)
        else:  # (an incomplete leftover at ``target`` is replaced)
            io.publish_folder(staged, target)
    except OSError:  # another run published between the check and the rename
        shutil.rmtree(staged, ignore_errors=True)
    log.info("toy model: warm start done in %.0fs (loss %.3f)", time.perf_counter() - t0, losses[-1])
    return target
