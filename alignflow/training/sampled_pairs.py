"""Rejection-sampling preference data for the offline methods (`pairs: sampled`).

The SFT model answers each policy prompt k times; the verifiers' weighted sum ranks the answers (one cut at the
token limit below any finished one) and the reward model breaks ties; the best and the worst answer of a prompt
become a (chosen, rejected) pair. The policy then learns from its own distribution what the rules reward, without
generating while it trains: sampling is the whole cost, which is what makes it a CPU-friendly alternative to
online RL with verifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alignflow.config import SampledPairsParams
from alignflow.data.formatting import conversation
from alignflow.data.tokenize import prompt_record
from alignflow.evaluation.generation import generate
from alignflow.progress import progress
from alignflow.verifiers.sources import RewardSources, source_means


def ranked_pair(
    texts: Sequence[str],
    verified: Sequence[float],
    model_scores: Sequence[float],
    finished: Sequence[bool] | None = None,
    decided_by: str = "any",
    rejected_finished: bool = False,
) -> tuple[int, int] | None:
    """Indices of the best and the worst answer by (finished, verifiers, reward model): an answer cut at the token
    limit never beats a finished one, as PPO penalises it; None when nothing tells them apart. With decided_by
    `verifiers`, only a finished answer the verifiers score strictly above the worst makes a pair, so the pair
    teaches the rules and not finishing or the reward model's taste. With `rejected_finished`, the worst is taken
    among finished answers too: a cut answer is often the longest, so a pair would also teach "shorter"."""
    finished = finished if finished is not None else [True] * len(texts)
    done = [i for i in range(len(texts)) if finished[i]]
    candidates = done if rejected_finished else list(range(len(texts)))
    if decided_by == "verifiers":
        if not done:
            return None
        best = max(done, key=lambda i: (verified[i], model_scores[i], -i))
        worst = min(candidates, key=lambda i: (verified[i], finished[i], model_scores[i], -i))
        return (best, worst) if verified[best] > verified[worst] else None
    keys = list(zip(finished, verified, model_scores))
    order = sorted(candidates, key=lambda i: (keys[i], -i))
    if len(order) < 2:
        return None
    best, worst = order[-1], order[0]
    if keys[best] == keys[worst] or texts[best] == texts[worst]:
        return None
    return best, worst


def sampled_pairs(
    lm,
    tokenizer,
    rows: Sequence[Mapping[str, Any]],
    reward_model,
    config: SampledPairsParams,
    stop_id: int,
    seed: int,
    where: str,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Pairs in the comparison rows' shape (prompt, context, chosen, rejected) and what the sampling measured:
    pairs kept, pairs the verifiers decided (the chosen answer scores higher by them), each verifier's mean."""
    rows = list(rows[: config.prompts] if config.prompts else rows)
    k = config.samples_per_prompt
    repeated = [row for row in rows for _ in range(k)]
    drawn = generate(
        lm,
        tokenizer,
        [row["input_ids"] for row in repeated],
        stop_id,
        config.max_new_tokens,
        config.temperature,
        config.top_p,
        config.batch_size,
        seed,
    )
    texts = drawn.texts
    sources = RewardSources.load(0.0, config.verifiers, where)
    verified = sources.score(texts, [prompt_record(row) for row in repeated])
    totals = sources.mix(None, verified) if verified else [0.0] * len(texts)
    progress(f"scoring {len(texts)} sampled answers with the reward model")
    model_scores = reward_model([conversation(row) for row in repeated], texts).tolist()
    pairs, decided = [], 0
    for index, row in enumerate(rows):
        span = slice(index * k, (index + 1) * k)
        scored = (texts[span], totals[span], model_scores[span], drawn.finished[span])
        found = ranked_pair(*scored, config.decided_by, config.rejected_finished)
        if found is None:
            continue
        best, worst = (index * k + i for i in found)
        decided += totals[best] > totals[worst]
        pair = {"prompt": row["prompt"], "context": row.get("context"), "chosen": texts[best], "rejected": texts[worst]}
        pairs.append(pair)
    stats = {
        "sampled_prompts": len(rows),
        "sampled_pairs": len(pairs),
        "pairs_decided_by_verifiers": decided,
        "sampled_unfinished": drawn.unfinished_fraction,
        **{f"sampled_{name}": round(value, 4) for name, value in source_means(verified).items()},
    }
    return pairs, stats
