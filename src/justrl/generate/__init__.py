"""Sampling from a policy: one :class:`~justrl.generate.hf.Generator` protocol, several backends.

In: a model (loaded, or a path / hub id), prompts as token ids, :class:`SamplingParams`. Out:
:class:`Completion` lists (tokens, text, per-token log-probs, finish reason). Imports: the ground
floor only.

- ``hf``: the protocol, the plain transformers generator (dynamic KV cache) and the shared
  sampling helpers (left padding, position ids, per-row seeded sampling);
- ``static``: ``hf-static``, a static KV cache with a compiled decode step (the GPU path);
- ``factory``: which transformers generator a name picks (``auto``/``hf``/``hf-static``), above both;
- ``vllm``: a vLLM engine for evaluation; ``colocate``: vLLM beside the trainer for rollouts,
  weights reloaded after each update;
- ``context_window``: prompt + budget against the model's context; ``model_files``: local folders,
  offline hub ids, weight fingerprints.
"""

__all__ = ["colocate", "context_window", "factory", "hf", "model_files", "static", "vllm"]
