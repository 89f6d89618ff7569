"""lenient: Math-Verify glue -- the fast path agrees with Math-Verify's own answer ranking."""

from __future__ import annotations

from justrl.verifiers import lenient as lenient_mod


def test_lenient_fast_path_picks_the_answer_math_verify_ranks_first(cases) -> None:
    # The fast path reads the last \boxed{} without running Math-Verify's extraction; wherever it
    # does, Math-Verify's own ranking must lead to the same verdict.
    lenient = lenient_mod.Lenient()
    checked = 0
    for c in cases[::2]:
        tail = c["response"][-lenient.tail_chars :]
        box = lenient_mod._decisive_box(tail)
        if box is None or box is lenient_mod._UNCLOSED:
            continue
        truth = lenient_mod._unwrap_truth(c["ground_truth"])
        stated = lenient._stated_answer(tail)
        assert stated is not None, c["id"]
        fast = lenient._compare_quick(box, truth) or lenient._compare_math_verify(box, truth)
        ranked = lenient._compare_quick(stated, truth) or lenient._compare_math_verify(stated, truth)
        assert fast.correct == ranked.correct, (c["id"], box, stated)
        checked += 1
    assert checked > 150
