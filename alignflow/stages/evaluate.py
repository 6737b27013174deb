"""evaluate: the policy against SFT (and SFT best-of-n) on held-out prompts -> metrics/eval.json, plots/, samples.

Run: `python -m alignflow.stages.evaluate` after `baseline` (`compute.backend: ray`: sampling and scoring split
over Ray workers, same results). The policy samples every held-out prompt with the seed SFT sampled it with in
the baseline stage (data/baseline.json, which holds SFT's responses, best-of-n and their scores); the reward model
and the independent judge (models/judge, trained on comparison groups the reward model never saw) score the
policy's responses; each comparison carries a paired bootstrap 95 % interval.
mlflow and the transformers auto classes are imported where they are used, so that importing this module (as
`alignflow evaluate` and Ray workers do) does not load MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, SourceParams, section_dict
from alignflow.data.formatting import prepare_tokenizer
from alignflow.data.tokenize import tokenize_prompts
from alignflow.data.validate import validate_source
from alignflow.errors import StageInputError
from alignflow.evaluation.benchmark import pipeline_items, score_model, verdicts_from_record
from alignflow.evaluation.fingerprint import as_tags, evaluation_fingerprint
from alignflow.evaluation.ifeval import checker_version, paired_difference
from alignflow.evaluation.loading import eval_prompts, load_model, load_scorers, load_tokenizer, model_metrics
from alignflow.evaluation.plots import alignment_curve, reward_histograms, training_curves
from alignflow.evaluation.suite import (
    PromptResult,
    baseline_rows,
    evaluate_models,
    evaluation_batches,
    policy_batches,
    sample_table,
    summarise,
)
from alignflow.io import staged_outputs, write_json
from alignflow.scale.launch import rows_on_ray
from alignflow.stages.common import cli, require


def evaluate_prompt_file(params: Params, prompts_file: Path, policy_dir: Path, report: Path) -> dict[str, Any]:
    """SFT vs a policy on any {"id", "prompt"} JSONL: a separate report; never the gate's metrics or dvc.lock."""
    records = validate_source("eval_prompts", SourceParams(str(prompts_file))).records
    tokenizer, stop_id = load_tokenizer(params, require(policy_dir, "align"))
    sft, policy = load_model(params, "sft"), load_model(params, "policy", policy_dir)
    chat = prepare_tokenizer(tokenizer, params.tokenize)
    prompts, _ = tokenize_prompts(records, tokenizer, chat, params.tokenize.prompt_max_length)
    result = evaluate_models(
        sft, policy, tokenizer, prompts, load_scorers(params), stop_id, params.evaluate, params.common.seed
    )
    metrics = {"prompts_file": str(prompts_file), "policy": str(policy_dir), **result.metrics}
    with staged_outputs(report) as (path,):
        write_json(path, {"metrics": metrics, "samples": sample_table(prompts, result)})
    return metrics


def read_baseline(params: Params) -> tuple[dict[int, PromptResult], dict[str, Any]]:
    """(SFT's rows by prompt index, SFT's own metrics) from the baseline stage, checked against the prompts."""
    path = require(paths.BASELINE, "baseline")
    record = json.loads(path.read_text(encoding="utf-8"))
    return baseline_rows(record, eval_prompts(params), str(path)), record.get("metrics", {})


def ifeval_comparison(params: Params, policy, tokenizer, stop_id: int) -> dict[str, float]:
    """The policy's IFEval metrics, and its prompt-level strict accuracy minus SFT's and the base model's, paired on
    the prompts the baseline stage answered."""
    scores, answers = score_model(params, policy, tokenizer, stop_id, "policy")
    path = require(paths.BASELINE, "baseline")
    saved = json.loads(path.read_text(encoding="utf-8")).get("ifeval")
    if saved is None:
        raise StageInputError(f"{path}: ifeval: missing (made with evaluate.ifeval.enabled false); rerun baseline")
    keys = [item.key for item in answers.items]
    for name in ("sft", "base"):
        earlier = verdicts_from_record(saved[name], keys, str(path))
        scores.update(paired_difference(answers.verdicts, earlier, f"policy_{name}", params.common.seed))
    return scores


def fingerprint(params: Params, prompts: list[dict[str, Any]], tokenizer) -> dict[str, str]:
    """What this evaluation's numbers depend on (alignflow.evaluation.fingerprint), part by part."""
    config = params.evaluate
    decoding = {
        **{key: getattr(config, key) for key in ("max_new_tokens", "temperature", "top_p", "batch_size", "dtype")},
        "ifeval_max_new_tokens": config.ifeval.max_new_tokens,
        "seed": params.common.seed,
    }
    keys = [item.key for item in pipeline_items(params)] if config.ifeval.enabled else []
    template = tokenizer.chat_template if params.tokenize.template == "chat" else section_dict(params.tokenize.markers)
    scorers = {"reward": paths.REWARD_MODEL, "judge": paths.JUDGE_MODEL}
    return evaluation_fingerprint(
        prompts, keys, Path(config.ifeval.path), decoding, checker_version(), str(template), scorers
    )


def policy_share(params: Params, batches: list) -> dict[int, PromptResult]:
    """The policy's rows for some of the batches (all, or one Ray worker's share, in a folder holding the inputs)."""
    tokenizer, stop_id = load_tokenizer(params, require(paths.POLICY, "align"))
    sft, policy = load_model(params, "sft"), load_model(params, "policy")
    baseline, _ = read_baseline(params)
    return policy_batches(
        policy,
        sft,
        tokenizer,
        eval_prompts(params),
        load_scorers(params),
        stop_id,
        params.evaluate,
        params.common.seed,
        batches,
        baseline,
    )


def run(params: Params) -> dict[str, Any]:
    import mlflow

    config, seed = params.evaluate, params.common.seed
    prompts = eval_prompts(params)
    baseline, sft_metrics = read_baseline(params)
    batches = evaluation_batches(prompts, config)
    tokenizer, stop_id = load_tokenizer(params, require(paths.POLICY, "align"))
    if params.compute.backend == "ray":
        inputs = (paths.TOKENIZED / "eval_prompts", paths.SFT_MODEL, paths.POLICY, paths.REWARD_MODEL)
        inputs += (paths.JUDGE_MODEL, paths.BASELINE)
        results = rows_on_ray(policy_share, batches, params, inputs)
        policy = load_model(params, "policy")
    else:
        sft, policy = load_model(params, "sft"), load_model(params, "policy")
        scorers = load_scorers(params)
        results = policy_batches(policy, sft, tokenizer, prompts, scorers, stop_id, config, seed, batches, baseline)
    result = summarise(results, config, seed)
    metrics = {
        **result.metrics,
        **{k: v for k, v in sft_metrics.items() if k != "prompts"},
        **model_metrics(params, "policy", policy, tokenizer),
        **(ifeval_comparison(params, policy, tokenizer, stop_id) if config.ifeval.enabled else {}),
    }
    numbers = dict(metrics)
    metrics["fingerprint"] = fingerprint(params, prompts, tokenizer)
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
        mlflow.log_metrics(numbers)
        mlflow.set_tags(as_tags(metrics["fingerprint"]))
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
