"""The alignment learning curve: the policy against SFT on a fixed set of held-out prompts, during training."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from alignflow.config import EvaluateParams
from alignflow.data.formatting import conversation
from alignflow.data.tokenize import prompt_record
from alignflow.evaluation.generation import generate
from alignflow.evaluation.metrics import win_rate
from alignflow.rl.best import VERIFIERS
from alignflow.verifiers.sources import RewardSources


class AlignmentProbe:
    """Samples the policy on fixed prompts with evaluation's settings and scores it against SFT's responses.

    Called with the SFT model first (`set_reference`), then with the policy every few updates; returns
    {"curve_win_rate", "curve_judge_win_rate"} (reward model and judge, ties half), and with `verifiers` also
    "curve_verifiers": their weighted sum, averaged over the dev prompts (the policy's verifier reward there).
    `seconds` adds up the time spent in it, so the stage can report the probe's share of training.
    """

    def __init__(
        self,
        tokenizer,
        prompts: list[dict[str, Any]],
        scorers: dict[str, Callable],
        stop_id: int,
        config: EvaluateParams,
        seed: int,
        verifiers: RewardSources | None = None,
    ):
        self.tokenizer, self.prompts, self.scorers, self.stop_id = tokenizer, prompts, scorers, stop_id
        self.config, self.seed = config, seed
        self.verifiers = verifiers if verifiers is not None and verifiers.verifiers else None
        self.records = [prompt_record(p) for p in prompts]
        self.texts = [conversation(p) for p in prompts]
        self.reference: dict[str, list[float]] = {}
        self.seconds = 0.0

    def _scores(self, lm) -> dict[str, list[float]]:
        started, c = time.monotonic(), self.config
        drawn = generate(
            lm,
            self.tokenizer,
            [p["input_ids"] for p in self.prompts],
            self.stop_id,
            c.max_new_tokens,
            c.temperature,
            c.top_p,
            c.batch_size,
            self.seed,
        )
        scores = {name: scorer(self.texts, drawn.texts).tolist() for name, scorer in self.scorers.items()}
        if self.verifiers is not None:
            scores[VERIFIERS] = self.verifiers.mix(None, self.verifiers.score(drawn.texts, self.records))
        self.seconds += time.monotonic() - started
        return scores

    def set_reference(self, sft) -> None:
        self.reference = self._scores(sft)

    def __call__(self, policy) -> dict[str, float]:
        scores = self._scores(policy)
        stats = {
            f"curve_{'' if name == 'reward' else name + '_'}win_rate": win_rate(scores[name], self.reference[name])
            for name in self.scorers
        }
        if VERIFIERS in scores:
            stats[VERIFIERS] = round(sum(scores[VERIFIERS]) / len(scores[VERIFIERS]), 4)
        return stats
