"""Turn validated records into model inputs: SFT examples with completion-only labels, reward pairs, prompts."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np

from alignflow.config import TokenizeParams
from alignflow.data.formatting import IGNORE_INDEX, ChatFormat, conversation, reward_inputs, tokenize_with_labels


def split_indices(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices; deterministic for a seed; at least one validation item when fraction > 0."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    held_out = min(count - 1, max(1, round(count * fraction))) if fraction > 0 and count > 1 else 0
    return sorted(order[held_out:]), sorted(order[:held_out])


def split_comparison_groups(
    count: int, validation_fraction: float, judge_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Group indices for the reward model (train), held-out measurement (validation) and the judge.

    Splitting by prompt group keeps every prompt on one side; the judge's groups are never seen by the
    reward model, and validation groups by neither, so both are measured on the same unseen pairs.
    """
    rest, validation = split_indices(count, validation_fraction, seed)
    kept, judged = split_indices(len(rest), judge_fraction / (1 - validation_fraction), seed + 1)
    return {"train": [rest[i] for i in kept], "validation": validation, "judge": [rest[i] for i in judged]}


def with_mismatched_answers(groups: list[dict[str, Any]], per_group: int, seed: int) -> list[dict[str, Any]]:
    """Add `per_group` pairs to each comparison group: its best response over the best response to another
    group's prompt (category off_topic, the group's largest score gap). Teaches a reward model to check that
    an answer fits the question, from the same split's data only."""
    if per_group <= 0 or len(groups) < 2:
        return groups
    rng = random.Random(seed)
    best = [_best_response(group) for group in groups]
    augmented = []
    for index, group in enumerate(groups):
        gaps = [p["score_gap"] for p in group["pairs"] if p["score_gap"] is not None]
        others = rng.sample([i for i in range(len(groups)) if best[i] != best[index]], min(per_group, len(groups) - 1))
        extra = [
            {
                "chosen": best[index],
                "rejected": best[i],
                "score_gap": max(gaps) if gaps else None,
                "category": "off_topic",
            }
            for i in others
        ]
        augmented.append({**group, "pairs": group["pairs"] + extra})
    return augmented


def _best_response(group: dict[str, Any]) -> str:
    """The response no other response of the group beats (the first chosen one that is never rejected)."""
    rejected = {p["rejected"] for p in group["pairs"]}
    return next(p["chosen"] for p in group["pairs"] if p["chosen"] not in rejected)


def tokenize_sft(
    records: list[dict[str, Any]], tokenizer, chat_format: ChatFormat, max_length: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows of id, input_ids, labels; conversations left with no trainable token are dropped and counted."""
    rows, truncated, dropped = [], 0, 0
    add_special = chat_format.template == "markers"
    for record in records:
        text, spans = chat_format.render(tokenizer, record["messages"])
        encoded = tokenize_with_labels(tokenizer, text, spans, max_length, add_special_tokens=add_special)
        truncated += encoded["truncated"]
        if all(label == IGNORE_INDEX for label in encoded["labels"]):
            dropped += 1
            continue
        rows.append({"id": record["id"], "input_ids": encoded["input_ids"], "labels": encoded["labels"]})
    return rows, {"truncated": truncated, "dropped_no_labels": dropped}


def reward_pairs(
    records: list[dict[str, Any]], tokenizer, max_length: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One row per (chosen, rejected) pair, encoded for the reward model; score_gap is null when unscored. Rows keep
    a multi-turn prompt's earlier turns (`context`), which offline policy methods render before the prompt."""
    rows, truncated = [], 0
    multi_turn = any(record.get("context") for record in records)
    for record in records:
        for index, pair in enumerate(record["pairs"]):
            row = {
                "id": f"{record['id']}-{index}",
                "group": record["id"],
                "prompt": record["prompt"],
                "chosen": pair["chosen"],
                "rejected": pair["rejected"],
                "score_gap": pair["score_gap"],
                "category": pair.get("category") or "unlabelled",
                **({"context": record.get("context", [])} if multi_turn else {}),
            }
            for side in ("chosen", "rejected"):
                encoded = reward_inputs(tokenizer, conversation(record), pair[side], max_length)
                truncated += encoded["truncated"]
                row[f"{side}_ids"] = encoded["input_ids"]  # the column names TRL's RewardTrainer reads
            rows.append(row)
    return rows, {"truncated": truncated}


def reward_datasets(
    groups: list[dict[str, Any]], tokenizer, config: TokenizeParams, seed: int
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Encoded pairs for the reward model (`train`), the judge (`judge`) and held-out measurement (`validation`),
    split by comparison group; training splits gain mismatched-answer pairs, held-out pairs stay as the data has
    them. Returns (rows per split, how many encodings were truncated)."""
    splits, truncated = {}, 0
    indices = split_comparison_groups(len(groups), config.comparison_validation_fraction, config.judge_fraction, seed)
    for split, chosen in indices.items():
        chosen_groups = [groups[i] for i in chosen]
        if split != "validation":
            chosen_groups = with_mismatched_answers(chosen_groups, config.mismatched_pairs, seed)
        splits[split], counts = reward_pairs(chosen_groups, tokenizer, config.reward_max_length)
        truncated += counts["truncated"]
    return splits, truncated


def tokenize_prompts(
    records: list[dict[str, Any]], tokenizer, chat_format: ChatFormat, max_length: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Prompts rendered up to where the reply begins; long ones keep their end (where the question is). Rows keep
    a multi-turn prompt's earlier turns (`context`), which the reward model is shown again at scoring time."""
    rows, truncated = [], 0
    multi_turn = any(record.get("context") for record in records)
    checked = any(key in record for record in records for key in CHECKED_FIELDS)
    for record in records:
        ids = tokenizer(chat_format.prompt(tokenizer, conversation(record)), add_special_tokens=False)["input_ids"]
        truncated += len(ids) > max_length
        row = {"id": record["id"], "prompt": record["prompt"], "input_ids": ids[-max_length:]}
        if multi_turn:
            row["context"] = record.get("context", [])
        if checked:  # one JSON text column: constraints' kwargs differ in shape from row to row, Arrow's types do not
            row["checks"] = json.dumps({key: record[key] for key in CHECKED_FIELDS if key in record}, sort_keys=True)
        rows.append(row)
    return rows, {"truncated": truncated}


CHECKED_FIELDS = ("constraints", "ground_truth")
"""What a prompt may carry for its verifiers (alignflow/verifiers), kept beside its tokens."""


def prompt_record(row: dict[str, Any]) -> dict[str, Any]:
    """A tokenized prompt row as its verifiers read it: the prompt with its constraints and ground truth."""
    return {"prompt": row["prompt"], **json.loads(row.get("checks") or "{}")}


def length_stats(rows: list[dict[str, Any]], column: str = "input_ids") -> dict[str, float]:
    lengths = np.array([len(r[column]) for r in rows]) if rows else np.zeros(1)
    return {
        "mean": round(float(lengths.mean()), 1),
        "p50": float(np.percentile(lengths, 50)),
        "p95": round(float(np.percentile(lengths, 95)), 1),
        "max": int(lengths.max()),
    }
