"""baseline: SFT's half of the evaluation -> data/baseline.json, so a new policy is evaluated without sampling SFT
again.

Run: `python -m alignflow.stages.baseline` (`compute.backend: ray`: the batches split over Ray workers, same
results). IFEval's prompts (`evaluate.ifeval`) are answered greedily by SFT and the base model (once, when
`sft.tuning: none` makes them one model). SFT samples once per held-out prompt, SFT best-of-n n times on the first
`best_of_n_prompts`, the reward model and the judge score them, and SFT's held-out loss (and multiple-choice
accuracy) is measured. Nothing here reads the policy, so DVC reruns this stage only when SFT, the scorers, the
prompts or these settings change; the evaluate stage adds the policy to the saved rows with the same per-batch
seeds, giving the numbers one process computing both would.
"""

from __future__ import annotations

from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.evaluation.benchmark import score_model
from alignflow.evaluation.ifeval import ifeval_metrics
from alignflow.evaluation.loading import eval_prompts, load_model, load_scorers, load_tokenizer, model_metrics
from alignflow.evaluation.suite import PromptResult, baseline_batches, baseline_record, evaluation_batches
from alignflow.io import staged_outputs, write_json
from alignflow.scale.launch import rows_on_ray
from alignflow.stages.common import cli, require


def baseline_share(params: Params, batches: list) -> dict[int, PromptResult]:
    """SFT's rows for some of the batches (all, or one Ray worker's share, in a folder holding the inputs)."""
    tokenizer, stop_id = load_tokenizer(params, require(paths.SFT_MODEL / "model", "sft"))
    sft = load_model(params, "sft")
    prompts, config = eval_prompts(params), params.evaluate
    return baseline_batches(sft, tokenizer, prompts, load_scorers(params), stop_id, config, params.common.seed, batches)


def run(params: Params) -> dict[str, Any]:
    import mlflow

    config, seed = params.evaluate, params.common.seed
    prompts = eval_prompts(params)
    batches = evaluation_batches(prompts, config)
    tokenizer, stop_id = load_tokenizer(params, require(paths.SFT_MODEL / "model", "sft"))
    sft = load_model(params, "sft")
    if params.compute.backend == "ray":
        inputs = (paths.TOKENIZED / "eval_prompts", paths.SFT_MODEL, paths.REWARD_MODEL, paths.JUDGE_MODEL)
        rows = rows_on_ray(baseline_share, batches, params, inputs)
    else:
        rows = baseline_batches(sft, tokenizer, prompts, load_scorers(params), stop_id, config, seed, batches)
    metrics = {"prompts": len(rows), **model_metrics(params, "sft", sft, tokenizer)}
    record = baseline_record(prompts, rows, metrics)
    if config.ifeval.enabled:
        answers = {}
        scores, answers["sft"] = score_model(params, sft, tokenizer, stop_id, "sft")
        metrics.update(scores)
        if params.sft.tuning == "none":  # the same model: the same greedy answers
            answers["base"] = answers["sft"]
            metrics.update(ifeval_metrics(answers["sft"].items, answers["sft"].verdicts, "base"))
        else:
            scores, answers["base"] = score_model(params, load_model(params, "base"), tokenizer, stop_id, "base")
            metrics.update(scores)
        record["ifeval"] = {name: found.record() for name, found in answers.items()}
    with tracking.stage_run("baseline", params.common.experiment, section_dict(config)):
        with staged_outputs(paths.BASELINE, paths.metrics_file("baseline")) as (baseline_path, metrics_path):
            write_json(baseline_path, record)
            write_json(metrics_path, metrics)
        mlflow.log_metrics(metrics)
    print(f"baseline: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
