"""``dapo-strict``: the JustRL training reward (verl's strict-box ``math_dapo`` check)."""

from __future__ import annotations

from dataclasses import dataclass

from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict
from justrl.verifiers.boxed import last_boxed_content

STRICT_TAIL_CHARS = 300  # verl's compute_score only reads the response's last 300 characters
STRICT_BOX_WINDOW = 100  # ... and the strict box check only the last 100 of those


@dataclass(frozen=True)
class DapoStrict:
    """JustRL's training reward: the last balanced ``\\boxed{}`` near the end, compared exactly.

    Matches ``verl.utils.reward_score.math_dapo.compute_score(..., strict_box_verify=True)``:
    only the last 300 characters of the response are read, the box must lie within the final 100
    of those, and its content must equal the ground truth string character for character (no
    stripping, no normalisation; a ground truth written ``\\boxed{204}``, as in AIME24, therefore
    never matches -- unwrap such ground truths before training on them).
    """

    name: str = "dapo-strict"
    tail_chars: int = STRICT_TAIL_CHARS
    box_window: int = STRICT_BOX_WINDOW
    timeout_s: float = DEFAULT_TIMEOUT_S  # unused: the check is linear in a 300-character tail

    def quick(self, response: str, ground_truth: str) -> Verdict:
        window = response[-self.tail_chars :][-self.box_window :]
        extracted = last_boxed_content(window)
        if extracted is None:
            return Verdict(False, None, "no-boxed")
        if extracted == ground_truth:
            return Verdict(True, extracted, "exact-match")
        return Verdict(False, extracted, "mismatch")

    full = quick

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        return self.quick(response, ground_truth)


_DAPO_STRICT = DapoStrict()


def dapo_reward(response: str, ground_truth: str) -> float:
    """The JustRL training reward: +1.0 when ``dapo-strict`` accepts the response, else -1.0."""
    return 1.0 if _DAPO_STRICT.quick(response, ground_truth).correct else -1.0
