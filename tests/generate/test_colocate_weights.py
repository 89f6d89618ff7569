"""The weights handed to a colocated vLLM engine are streamed: cast one at a time, in its dtype."""

from __future__ import annotations

import inspect

import torch

from justrl.generate.colocate import streamed_weights


def test_weights_are_streamed_one_at_a_time_in_the_engines_dtype() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    stream = streamed_weights(model, torch.bfloat16)
    assert inspect.isgenerator(stream)  # nothing cast before vLLM asks
    got = list(stream)
    assert [name for name, _ in got] == list(model.state_dict())
    assert all(t.dtype == torch.bfloat16 for _, t in got)
    assert torch.equal(got[0][1], model[0].weight.detach().to(torch.bfloat16))
