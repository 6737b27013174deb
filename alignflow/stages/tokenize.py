"""tokenize: dedup'd records -> Arrow datasets (save_to_disk) for SFT, reward pairs and PPO/eval prompts.

Run: `python -m alignflow.stages.tokenize`. No padding is stored: batches are padded dynamically later.
The policy tokenizer (with marker tokens added, if that format is chosen) is saved beside the data.
transformers and mlflow are imported inside `run`, so that importing this module stays fast.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, DatasetDict

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.data.formatting import prepare_tokenizer
from alignflow.data.tokenize import (
    length_stats,
    reward_datasets,
    split_indices,
    tokenize_prompts,
    tokenize_sft,
)
from alignflow.errors import DataError
from alignflow.io import staged_outputs, write_json
from alignflow.models.loading import load_pretrained
from alignflow.stages.common import cli, read_records, require

OUTPUTS = ("sft", "reward", "prompts", "eval_prompts", "tokenizer")


def _split(rows: list[dict[str, Any]], fraction: float, seed: int) -> DatasetDict:
    train, validation = split_indices(len(rows), fraction, seed)
    return DatasetDict(
        {
            "train": Dataset.from_list([rows[i] for i in train]),
            "validation": Dataset.from_list([rows[i] for i in validation]),
        }
    )


def run(params: Params) -> dict[str, Any]:
    from transformers import AutoTokenizer

    config, seed = params.tokenize, params.common.seed
    records = {
        name: read_records(name, paths.dedup_file(name), "dedup")
        for name in ("sft", "comparisons", "prompts", "eval_prompts")
    }
    tokenizer = load_pretrained(AutoTokenizer, require(paths.BASE_MODEL, "ingest"))
    chat_format = prepare_tokenizer(tokenizer, config)
    reward_tokenizer = (
        load_pretrained(AutoTokenizer, require(paths.ENCODER, "ingest"))
        if params.reward.backbone == "encoder"
        else tokenizer
    )

    sft_rows, sft_counts = tokenize_sft(records["sft"], tokenizer, chat_format, config.max_length)
    reward_splits, reward_truncated = reward_datasets(records["comparisons"], reward_tokenizer, config, seed)
    prompt_rows = {
        name: tokenize_prompts(records[name], tokenizer, chat_format, config.prompt_max_length)
        for name in ("prompts", "eval_prompts")
    }

    metrics: dict[str, Any] = {
        "sft_examples": len(sft_rows),
        "sft_truncated_pct": round(100 * sft_counts["truncated"] / len(records["sft"]), 2),
        "sft_dropped_no_labels": sft_counts["dropped_no_labels"],
        **{f"reward_pairs_{split}": len(rows) for split, rows in reward_splits.items()},
        "reward_truncated_pct": round(100 * reward_truncated / max(1, 2 * sum(map(len, reward_splits.values()))), 2),
    }
    metrics.update({f"sft_length_{k}": v for k, v in length_stats(sft_rows).items()})
    metrics.update({f"reward_length_{k}": v for k, v in length_stats(reward_splits["train"], "chosen_ids").items()})
    for name, (rows, counts) in prompt_rows.items():
        metrics[f"{name}_count"] = len(rows)
        metrics[f"{name}_truncated"] = counts["truncated"]
    if not sft_rows:
        raise DataError(
            paths.dedup_file("sft"),
            None,
            "messages",
            f"no conversation keeps an assistant token within tokenize.max_length={config.max_length}",
        )

    with tracking.stage_run("tokenize", params.common.experiment, section_dict(config)):
        import mlflow

        targets = [paths.TOKENIZED / name for name in OUTPUTS] + [paths.metrics_file("tokenize")]
        with staged_outputs(*targets) as outs:
            sft_dir, reward_dir, prompts_dir, eval_dir, tokenizer_dir, metrics_path = outs
            _split(sft_rows, config.validation_fraction, seed).save_to_disk(str(sft_dir))
            DatasetDict({split: Dataset.from_list(rows) for split, rows in reward_splits.items()}).save_to_disk(
                str(reward_dir)
            )
            Dataset.from_list(prompt_rows["prompts"][0]).save_to_disk(str(prompts_dir))
            Dataset.from_list(prompt_rows["eval_prompts"][0]).save_to_disk(str(eval_dir))
            tokenizer.save_pretrained(tokenizer_dir)
            write_json(metrics_path, metrics)
        mlflow.log_metrics(metrics)
    print(f"tokenize: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
