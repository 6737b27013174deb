"""The evaluation run shared by the evaluate stage and `alignflow evaluate --prompts`: sample, score, compare.

SFT and the policy sample once per prompt with the same seed; SFT best-of-n draws n samples (the first is
the SFT sample itself) on the first `best_of_n_prompts` prompts and keeps the one the reward model scores
highest; the reward model and the judge score everything.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from alignflow.config import EvaluateParams
from alignflow.data.formatting import conversation
from alignflow.errors import StageInputError
from alignflow.evaluation.comparison import best_of_n, comparison_metrics
from alignflow.evaluation.generation import Batch, Generations, generate, length_batches, sequence_kl
from alignflow.evaluation.metrics import summary
from alignflow.progress import progress

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
    """The per-prompt work for some of the batches (all of them, or one worker's share), by prompt index."""
    baseline = baseline_batches(sft, tokenizer, prompts, scorers, stop_id, config, seed, batches)
    return policy_batches(policy, sft, tokenizer, prompts, scorers, stop_id, config, seed, batches, baseline)


def baseline_batches(
    sft,
    tokenizer,
    prompts: list[dict[str, Any]],
    scorers: dict[str, Scorer],
    stop_id: int,
    config: EvaluateParams,
    seed: int,
    batches: list[Batch],
) -> dict[int, PromptResult]:
    """SFT's half of the comparison, which no policy changes: its sample per prompt and the scores, and SFT
    best-of-n (n samples, the first the SFT sample itself, on the prompts below `best_of_n_prompts`; the reward
    model keeps the highest). `kl` stays 0 until `policy_batches` adds the policy."""
    ids, texts = [p["input_ids"] for p in prompts], [conversation(p) for p in prompts]
    indices = [i for _, batch in batches for i in batch]
    generations = _draw(sft, tokenizer, ids, stop_id, config, seed, batches)
    scores = {name: _score(scorer, texts, indices, generations.texts) for name, scorer in scorers.items()}
    results = {
        i: PromptResult(
            texts={"sft": generations.texts[i]},
            lengths={"sft": generations.lengths[i]},
            finished={"sft": generations.finished[i]},
            scores={name: {"sft": by_prompt[i]} for name, by_prompt in scores.items()},
            kl=0.0,
        )
        for i in indices
    }
    bon_share = [(n, [i for i in batch if i < best_of_n_count(len(ids), config)]) for n, batch in batches]
    bon_share = [(n, batch) for n, batch in bon_share if batch]
    if bon_share:
        at = [i for _, batch in bon_share for i in batch]
        extra = [_draw(sft, tokenizer, ids, stop_id, config, seed + k, bon_share) for k in range(1, config.best_of_n)]
        extra_scores = [_score(scorers["reward"], texts, at, g.texts) for g in extra]
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
            bon_texts = {i: results[i].texts["bon"] for i in fresh}
            for i, value in _score(scorers["judge"], texts, fresh, bon_texts).items():
                results[i].scores["judge"]["bon"] = value
    return results


def policy_batches(
    policy,
    sft,
    tokenizer,
    prompts: list[dict[str, Any]],
    scorers: dict[str, Scorer],
    stop_id: int,
    config: EvaluateParams,
    seed: int,
    batches: list[Batch],
    baseline: dict[int, PromptResult],
) -> dict[int, PromptResult]:
    """The policy's half: its sample per prompt (the same seed per batch as SFT's), the scores and KL(policy || SFT),
    added to `baseline`'s rows (returned as new rows)."""
    ids, texts = [p["input_ids"] for p in prompts], [conversation(p) for p in prompts]
    indices = [i for _, batch in batches for i in batch]
    generations = _draw(policy, tokenizer, ids, stop_id, config, seed, batches)
    scores = {name: _score(scorer, texts, indices, generations.texts) for name, scorer in scorers.items()}
    kl = sequence_kl(policy, sft, generations, config.temperature)
    results = {}
    for i in indices:
        row = copy.deepcopy(baseline[i])
        row.texts["policy"], row.lengths["policy"] = generations.texts[i], generations.lengths[i]
        row.finished["policy"], row.kl = generations.finished[i], kl[i]
        for name, by_prompt in scores.items():
            row.scores[name]["policy"] = by_prompt[i]
        results[i] = row
    return results


def _draw(lm, tokenizer, ids, stop_id: int, config: EvaluateParams, seed: int, share: list[Batch]) -> Generations:
    c = config
    return generate(lm, tokenizer, ids, stop_id, c.max_new_tokens, c.temperature, c.top_p, c.batch_size, seed, share)


def _score(scorer: Scorer, texts: list, at: list[int], responses) -> dict[int, float]:
    """`scorer` on the prompts `at` and their responses (`responses[i]`: a list by prompt, or a dict)."""
    if not at:
        return {}
    scores = dict(zip(at, scorer([texts[i] for i in at], [responses[i] for i in at]).tolist()))
    progress(f"scored {len(at)} responses")
    return scores


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


def baseline_record(prompts: list[dict[str, Any]], rows: dict[int, PromptResult], metrics: dict) -> dict[str, Any]:
    """What the baseline stage saves: its rows by prompt index, the prompt ids they belong to, SFT's own metrics."""
    return {
        "prompt_ids": [p.get("id") for p in prompts],
        "rows": {str(i): dataclasses.asdict(rows[i]) for i in sorted(rows)},
        "metrics": metrics,
    }


def baseline_rows(record: dict[str, Any], prompts: list[dict[str, Any]], where: str) -> dict[int, PromptResult]:
    """The rows of a saved baseline, checked to be for these prompts (ids, in order) and to cover all of them."""
    ids = [p.get("id") for p in prompts]
    if record.get("prompt_ids") != ids:
        raise StageInputError(
            f"{where}: prompt_ids: made for other evaluation prompts than data/tokenized/eval_prompts holds "
            "(with evaluate.max_prompts applied); run the `baseline` stage again (dvc repro baseline)"
        )
    rows = {}
    for index, row in record.get("rows", {}).items():
        try:
            rows[int(index)] = PromptResult(**row)
        except (TypeError, ValueError) as exc:
            raise StageInputError(f"{where}: rows.{index}: not a saved prompt result ({exc})") from None
    missing = sorted(set(range(len(prompts))) - set(rows))
    if missing:
        raise StageInputError(f"{where}: rows: no row for prompt {missing[0]} ({len(missing)} missing)")
    return rows
