"""The evaluation run shared by the evaluate stage and `alignflow evaluate --prompts`: sample, score, compare.

SFT and the policy sample once per prompt with the same seed; SFT best-of-n draws n samples (the first is
the SFT sample itself) on the first `best_of_n_prompts` prompts and keeps the one the reward model scores
highest; the reward model and the judge score everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from alignflow.config import EvaluateParams
from alignflow.data.formatting import conversation
from alignflow.evaluation.comparison import best_of_n, comparison_metrics
from alignflow.evaluation.generation import Generations, generate, sequence_kl
from alignflow.evaluation.metrics import summary

Scorer = Callable[[Sequence[str], Sequence[str]], torch.Tensor]


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    texts: dict[str, list[str]]
    """Responses per model (sft, ppo, and bon for the best-of-n prefix)."""
    scores: dict[str, dict[str, list[float]]]
    """scores[scorer][model], scorers: reward and (when given) judge."""


def evaluate_models(
    sft,
    policy,
    tokenizer,
    prompts: list[dict[str, Any]],
    scorers: dict[str, Scorer],
    stop_id: int,
    config: EvaluateParams,
    seed: int,
) -> EvaluationResult:
    """Sample from both models on `prompts` ({"prompt", "input_ids"} rows) and compare them by every scorer."""
    ids, texts = [p["input_ids"] for p in prompts], [conversation(p) for p in prompts]

    def draw(lm, draw_seed: int, count: int = len(ids)) -> Generations:
        return generate(
            lm,
            tokenizer,
            ids[:count],
            stop_id,
            config.max_new_tokens,
            config.temperature,
            config.top_p,
            config.batch_size,
            draw_seed,
        )

    generations = {"sft": draw(sft, seed), "ppo": draw(policy, seed)}
    scores = {
        name: {model: scorer(texts, g.texts).tolist() for model, g in generations.items()}
        for name, scorer in scorers.items()
    }
    responses = {model: g.texts for model, g in generations.items()}
    metrics: dict[str, Any] = {"prompts": len(prompts)}
    bon_count = min(len(ids), config.best_of_n_prompts or len(ids)) if config.best_of_n > 1 else 0
    if bon_count:
        extra = [draw(sft, seed + k, bon_count) for k in range(1, config.best_of_n)]
        candidates = [[generations["sft"].texts[i], *(g.texts[i] for g in extra)] for i in range(bon_count)]
        finished = [[generations["sft"].finished[i], *(g.finished[i] for g in extra)] for i in range(bon_count)]
        extra_scores = [scorers["reward"](texts[:bon_count], g.texts).tolist() for g in extra]
        candidate_scores = [[scores["reward"]["sft"][i], *(row[i] for row in extra_scores)] for i in range(bon_count)]
        responses["bon"], picks = best_of_n(candidates, candidate_scores)
        scores["reward"]["bon"] = [row[pick] for row, pick in zip(candidate_scores, picks)]
        if "judge" in scorers:
            scores["judge"]["bon"] = scorers["judge"](texts[:bon_count], responses["bon"]).tolist()
        metrics.update(
            best_of_n=config.best_of_n,
            best_of_n_prompts=bon_count,
            unfinished_bon=round(1 - sum(row[p] for row, p in zip(finished, picks)) / bon_count, 4),
        )
    metrics.update(comparison_metrics(scores, seed))
    metrics.update(summary(sequence_kl(policy, sft, generations["ppo"], config.temperature), "kl_ppo_sft"))
    for model, g in generations.items():
        metrics.update(summary(g.lengths, f"length_{model}"))
        metrics[f"unfinished_{model}"] = g.unfinished_fraction
    return EvaluationResult(metrics, responses, scores)


def sample_table(prompts: list[dict[str, Any]], result: EvaluationResult) -> list[dict[str, Any]]:
    """One row per prompt: the prompt, each model's response and its reward-model (and judge) score."""
    rows = []
    for index, prompt in enumerate(prompts):
        row: dict[str, Any] = {"id": prompt.get("id"), "prompt": prompt["prompt"]}
        for model, texts in result.texts.items():
            if index < len(texts):
                row[model] = texts[index]
                for scorer, by_model in result.scores.items():
                    row[f"{scorer}_{model}"] = round(by_model[model][index], 4)
        rows.append(row)
    return rows
