"""Kill-safe sample files: cut lines dropped, pairs never written twice, folders never mixed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from justrl import evaluate as E


def _line(pid: int, seed: int, response: str = "r") -> str:
    return json.dumps({"example_id": pid, "prompt": "p", "answer": "a", "seed": seed, "response": response}) + "\n"


def _keys(path: Path) -> Counter:
    return Counter((rec["example_id"], rec["seed"]) for rec in E.read_samples(path))


def test_truncated_last_line_is_dropped_and_never_counted(tmp_path):
    path = tmp_path / "x.jsonl"
    whole = _line(0, 1) + _line(0, 2)
    path.write_text(whole + _line(1, 1)[:25])
    with E.SampleFile(path) as f:
        assert f.done == {(0, 1), (0, 2)} and f.dropped_bytes == 25
        assert path.read_text() == whole
        assert f.append({"example_id": 1, "prompt": "p", "answer": "a", "seed": 1, "response": "new"})
        assert not f.append({"example_id": 0, "prompt": "p", "answer": "a", "seed": 2, "response": "dup"})
    assert _keys(path) == Counter({(0, 1): 1, (0, 2): 1, (1, 1): 1})
    assert path.read_text().endswith('"response": "new"}\n')


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(_line(0, 1) + _line(0, 2).rstrip("\n"))
    with E.SampleFile(path) as f:
        assert f.done == {(0, 1), (0, 2)} and f.dropped_bytes == 0
        f.append(json.loads(_line(3, 3)))
    assert _keys(path) == Counter({(0, 1): 1, (0, 2): 1, (3, 3): 1})


def test_malformed_and_duplicate_lines_are_reported(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(_line(0, 1) + "not json\n" + '{"example_id": 5}\n' + _line(0, 1))
    with E.SampleFile(path) as f:
        assert f.done == {(0, 1)} and f.malformed_lines == [2, 3] and f.duplicate_lines == 1


def test_missing_leaves_out_the_pairs_already_written_in_order(tmp_path):
    path = tmp_path / "sub" / "x.jsonl"  # the folder is made on opening
    requests = [E.SampleRequest("B", pid, seed, "p", "a", "t") for pid in (2, 0, 1) for seed in (7, 8)]
    with E.SampleFile(path) as f:
        assert f.missing(requests) == requests
        f.append(requests[1].record("r"))
        f.append(requests[4].record("r"))
        assert [r.key for r in f.missing(requests)] == [(2, 7), (0, 7), (0, 8), (1, 8)]
    with E.SampleFile(path) as f:  # what a rerun sees
        assert [r.key for r in f.missing(requests)] == [(2, 7), (0, 7), (0, 8), (1, 8)]


def test_a_folder_of_another_model_prompt_or_seed_is_refused(tmp_path):
    config = E.EvalConfig(model="m")
    E.check_resumable(tmp_path, config)  # nothing recorded yet
    (tmp_path / E.CONFIG_FILE).write_text(json.dumps({"settings": config.to_dict()}))
    E.check_resumable(tmp_path, E.EvalConfig(model="m", temperature=0.1, n=3))  # same samples' source
    for change in ({"model": "other"}, {"seed": 1}, {"prompt": "{problem}!"}):
        key = next(iter(change))
        with pytest.raises(E.EvalError, match=f"holds an evaluation with {key}="):
            E.check_resumable(tmp_path, E.EvalConfig(**{"model": "m", **change}))
