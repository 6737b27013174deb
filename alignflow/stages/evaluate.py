"""evaluate: SFT vs the policy (and SFT best-of-n) on held-out prompts -> metrics/eval.json, plots/, samples.

Run: `python -m alignflow.stages.evaluate` (`compute.backend: ray`: sampling and scoring split over Ray workers,
same results). Both models sample with the same seed on every held-out prompt;
the reward model and the independent judge (models/judge, trained on comparison groups the reward model
never saw) score every response; each comparison carries a paired bootstrap 95 % interval.
mlflow and the transformers auto classes are imported where they are used, so that importing this module (as
`alignflow evaluate` and Ray workers do) does not load MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow import paths, tracking
from alignflow.config import Params, SourceParams, section_dict
from alignflow.data.formatting import ChatFormat, policy_stop_token, prepare_tokenizer
from alignflow.data.tokenize import tokenize_prompts
from alignflow.data.validate import validate_source
from alignflow.evaluation.likelihood import held_out_loss, multiple_choice_accuracy, read_multiple_choice
from alignflow.evaluation.plots import alignment_curve, reward_histograms, training_curves
from alignflow.evaluation.suite import (
    evaluate_batches,
    evaluate_models,
    evaluation_batches,
    sample_table,
    summarise,
)
from alignflow.io import staged_outputs, write_json
from alignflow.models.loading import load_pretrained
from alignflow.models.reward import RewardScorer
from alignflow.precision import weights_dtype
from alignflow.scale.launch import map_on_ray
from alignflow.stages.common import cli, load_arrow, require
from alignflow.training.sft import load_sft_model

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MODELS = ("sft", "policy")


def load_evaluation(
    params: Params, policy_dir: Path = paths.POLICY
) -> tuple[dict[str, PreTrainedModel | PeftModel], PreTrainedTokenizerBase, int, dict[str, RewardScorer]]:
    """(models {sft, policy}, policy tokenizer, stop id, scorers {reward, judge}) for an evaluation run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, require(policy_dir, "align"))
    dtype = getattr(torch, weights_dtype("evaluate.dtype", params.evaluate.dtype))
    models = {
        "sft": load_sft_model(require(paths.SFT_MODEL, "sft")).to(dtype),
        "policy": load_pretrained(AutoModelForCausalLM, policy_dir, dtype=dtype),
    }
    stop_id = tokenizer.convert_tokens_to_ids(policy_stop_token(params, tokenizer))
    scorers = {
        "reward": RewardScorer(require(paths.REWARD_MODEL, "reward"), params.tokenize.reward_max_length),
        "judge": RewardScorer(require(paths.JUDGE_MODEL, "reward"), params.tokenize.reward_max_length),
    }
    return models, tokenizer, stop_id, scorers


def evaluate_prompt_file(params: Params, prompts_file: Path, policy_dir: Path, report: Path) -> dict[str, Any]:
    """SFT vs a policy on any {"id", "prompt"} JSONL: a separate report; never the gate's metrics or dvc.lock."""
    records = validate_source("eval_prompts", SourceParams(str(prompts_file))).records
    models, tokenizer, stop_id, scorers = load_evaluation(params, policy_dir)
    chat = prepare_tokenizer(tokenizer, params.tokenize)
    prompts, _ = tokenize_prompts(records, tokenizer, chat, params.tokenize.prompt_max_length)
    result = evaluate_models(
        models["sft"], models["policy"], tokenizer, prompts, scorers, stop_id, params.evaluate, params.common.seed
    )
    metrics = {"prompts_file": str(prompts_file), "policy": str(policy_dir), **result.metrics}
    with staged_outputs(report) as (path,):
        write_json(path, {"metrics": metrics, "samples": sample_table(prompts, result)})
    return metrics


def eval_prompts(params: Params) -> list[dict[str, Any]]:
    prompts = load_arrow(paths.TOKENIZED / "eval_prompts", "tokenize").to_list()
    return prompts[: params.evaluate.max_prompts or None]


def evaluate_share(params: Params, batches: list) -> dict:
    """One Ray worker's share of the evaluation batches (run in a folder holding the stage's inputs)."""
    models, tokenizer, stop_id, scorers = load_evaluation(params)
    return evaluate_batches(
        models["sft"],
        models["policy"],
        tokenizer,
        eval_prompts(params),
        scorers,
        stop_id,
        params.evaluate,
        params.common.seed,
        batches,
    )


def run(params: Params) -> dict[str, Any]:
    import mlflow

    config, seed = params.evaluate, params.common.seed
    prompts = eval_prompts(params)
    models, tokenizer, stop_id, scorers = load_evaluation(params)
    chat = ChatFormat(params.tokenize.template, params.tokenize.markers)
    if params.compute.backend == "ray":
        batches, workers = evaluation_batches(prompts, config), params.compute.num_workers
        inputs = (
            paths.TOKENIZED / "eval_prompts",
            paths.SFT_MODEL,
            paths.POLICY,
            paths.REWARD_MODEL,
            paths.JUDGE_MODEL,
        )
        shares = [batches[w::workers] for w in range(workers) if batches[w::workers]]
        results = {i: row for part in map_on_ray(evaluate_share, shares, params, inputs) for i, row in part.items()}
        result = summarise(results, config, seed)
    else:
        result = evaluate_models(models["sft"], models["policy"], tokenizer, prompts, scorers, stop_id, config, seed)
    metrics = result.metrics
    held_out = load_arrow(paths.TOKENIZED / "sft", "tokenize")["validation"]
    for name in MODELS:
        if len(held_out):
            loss = held_out_loss(models[name], tokenizer, held_out, config.batch_size)
            metrics.update({f"heldout_loss_{name}": loss["loss"], f"heldout_perplexity_{name}": loss["perplexity"]})
    if config.multiple_choice:
        items = read_multiple_choice(Path(config.multiple_choice))
        for name in MODELS:
            metrics[f"mc_accuracy_{name}"] = multiple_choice_accuracy(
                models[name], tokenizer, items, lambda q: chat.prompt(tokenizer, q)
            )
    history = json.loads((paths.POLICY / "history.json").read_text())
    figures = {
        "eval_reward_hist.png": reward_histograms(result.scores["reward"]["sft"], result.scores["reward"]["policy"]),
        "policy_training.png": training_curves(history),
        "alignment_curve.png": alignment_curve(history),
    }
    samples = sample_table(prompts, result)
    with tracking.stage_run("evaluate", params.common.experiment, section_dict(config)):
        targets = [
            paths.metrics_file("evaluate"),
            paths.METRICS / "eval_samples.json",
            *(paths.PLOTS / f for f in figures),
        ]
        with staged_outputs(*targets) as (metrics_path, samples_path, *plot_paths):
            write_json(metrics_path, metrics)
            write_json(samples_path, samples)
            for figure, path in zip(figures.values(), plot_paths):
                figure.savefig(path, dpi=100)
        mlflow.log_metrics(metrics)
        for name, figure in figures.items():
            mlflow.log_figure(figure, name)
        mlflow.log_table(
            {key: [row.get(key) for row in samples[: config.samples_logged]] for key in samples[0]}, "eval_samples.json"
        )
    print(f"evaluate: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
