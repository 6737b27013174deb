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
from alignflow.evaluation.generation import Batch, Generations, generate, length_batches, sequence_kl
from alignflow.evaluation.metrics import summary

Scorer = Callable[[Sequence[str], Sequence[str]], torch.Tensor]


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    texts: dict[str, list[str]]
    """Responses per model (sft, policy, and bon for the best-of-n prefix)."""
    scores: dict[str, dict[str, list[float]]]
    """scores[scorer][model], scorers: reward and (when given) judge."""


@dataclass
class PromptResult:
    """One prompt's responses and what is measured on them, by model (sft, policy, and bon on the prefix)."""

    texts: dict[str, str]
    lengths: dict[str, int]
    finished: dict[str, bool]
    scores: dict[str, dict[str, float]]
    """scores[scorer][model]."""
    kl: float
    """KL(policy || SFT) of the policy's response."""


def evaluation_batches(prompts: list[dict[str, Any]], config: EvaluateParams) -> list[Batch]:
    return length_batches([p["input_ids"] for p in prompts], config.batch_size)


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
    batches = evaluation_batches(prompts, config)
    results = evaluate_batches(sft, policy, tokenizer, prompts, scorers, stop_id, config, seed, batches)
    return summarise(results, config, seed)


def evaluate_batches(
    sft,
    policy,
    tokenizer,
    prompts: list[dict[str, Any]],
    scorers: dict[str, Scorer],
    stop_id: int,
    config: EvaluateParams,
    seed: int,
    batches: list[Batch],
) -> dict[int, PromptResult]:
    """The per-prompt work for some of the batches (all of them, or one worker's share), by prompt index.

    SFT and the policy sample each batch with the same seed; SFT best-of-n draws n samples (the first is the SFT
    sample itself) on the prompts below `best_of_n_prompts` and keeps the one the reward model scores highest.
    """
    ids, texts = [p["input_ids"] for p in prompts], [conversation(p) for p in prompts]
    indices = [i for _, batch in batches for i in batch]

    def draw(lm, draw_seed: int, share: list[Batch]) -> Generations:
        c = config
        return generate(
            lm, tokenizer, ids, stop_id, c.max_new_tokens, c.temperature, c.top_p, c.batch_size, draw_seed, share
        )

    def score(scorer: Scorer, at: list[int], responses: list[str]) -> dict[int, float]:
        return dict(zip(at, scorer([texts[i] for i in at], responses).tolist())) if at else {}

    generations = {"sft": draw(sft, seed, batches), "policy": draw(policy, seed, batches)}
    scores = {
        name: {model: score(scorer, indices, [g.texts[i] for i in indices]) for model, g in generations.items()}
        for name, scorer in scorers.items()
    }
    kl = sequence_kl(policy, sft, generations["policy"], config.temperature)
    results = {
        i: PromptResult(
            texts={model: g.texts[i] for model, g in generations.items()},
            lengths={model: g.lengths[i] for model, g in generations.items()},
            finished={model: g.finished[i] for model, g in generations.items()},
            scores={name: {model: by_model[model][i] for model in by_model} for name, by_model in scores.items()},
            kl=kl[i],
        )
        for i in indices
    }
    bon_share = [(n, [i for i in batch if i < best_of_n_count(len(ids), config)]) for n, batch in batches]
    bon_share = [(n, batch) for n, batch in bon_share if batch]
    if bon_share:
        at = [i for _, batch in bon_share for i in batch]
        extra = [draw(sft, seed + k, bon_share) for k in range(1, config.best_of_n)]
        extra_scores = [score(scorers["reward"], at, [g.texts[i] for i in at]) for g in extra]
        fresh = []  # prompts whose pick is not the SFT sample itself (whose judge score is known)
        for i in at:
            row = results[i]
            candidate_scores = [row.scores["reward"]["sft"], *(s[i] for s in extra_scores)]
            (text,), (pick,) = best_of_n([[row.texts["sft"], *(g.texts[i] for g in extra)]], [candidate_scores])
            row.texts["bon"], row.scores["reward"]["bon"] = text, candidate_scores[pick]
            row.finished["bon"] = [row.finished["sft"], *(g.finished[i] for g in extra)][pick]
            if "judge" in scorers:
                row.scores["judge"]["bon"] = row.scores["judge"]["sft"]
                fresh += [i] if pick else []
        if "judge" in scorers:
            for i, value in score(scorers["judge"], fresh, [results[i].texts["bon"] for i in fresh]).items():
                results[i].scores["judge"]["bon"] = value
    return results


def best_of_n_count(prompts: int, config: EvaluateParams) -> int:
    """How many prompts (a prefix) SFT best-of-n samples: it costs n samples each."""
    return min(prompts, config.best_of_n_prompts or prompts) if config.best_of_n > 1 else 0


def summarise(results: dict[int, PromptResult], config: EvaluateParams, seed: int) -> EvaluationResult:
    """Headline metrics over every prompt's result (from one process or merged from several workers)."""
    rows = [results[i] for i in sorted(results)]
    models = ("sft", "policy")
    bon = [row for row in rows if "bon" in row.texts]
    responses = {model: [row.texts[model] for row in rows] for model in models}
    scores = {name: {model: [row.scores[name][model] for row in rows] for model in models} for name in rows[0].scores}
    metrics: dict[str, Any] = {"prompts": len(rows)}
    if bon:
        responses["bon"] = [row.texts["bon"] for row in bon]
        for name in scores:
            scores[name]["bon"] = [row.scores[name]["bon"] for row in bon]
        metrics.update(
            best_of_n=config.best_of_n,
            best_of_n_prompts=len(bon),
            unfinished_bon=round(1 - sum(row.finished["bon"] for row in bon) / len(bon), 4),
        )
    lengths = {model: [row.lengths[model] for row in rows] for model in models}
    metrics.update(comparison_metrics(scores, seed, lengths))
    metrics.update(summary([row.kl for row in rows], "kl_policy_sft"))
    for model in models:
        metrics.update(summary([row.lengths[model] for row in rows], f"length_{model}"))
        metrics[f"unfinished_{model}"] = round(1 - sum(row.finished[model] for row in rows) / len(rows), 4)
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
