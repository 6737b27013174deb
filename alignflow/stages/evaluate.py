"""evaluate: SFT vs PPO policy on held-out prompts -> metrics/eval.json, plots/, a sample-generations table.

Run: `python -m alignflow.stages.evaluate`. Both models sample with the same seed; the reward model scores
both; a judge reward model trained on comparisons the reward model never saw checks the verdict.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.data.formatting import ChatFormat
from alignflow.evaluation import metrics as compare
from alignflow.evaluation.generation import generate, sequence_kl
from alignflow.evaluation.likelihood import held_out_loss, multiple_choice_accuracy, read_multiple_choice
from alignflow.evaluation.plots import reward_histograms, training_curves
from alignflow.io import staged_outputs, write_json
from alignflow.stages.common import cli, load_arrow, require, reward_backbone
from alignflow.training.reward import RewardScorer, save_reward_model, train_reward_model
from alignflow.training.sft import load_sft_model

MODELS = ("sft", "ppo")


def train_judge(params: Params, workdir: Path) -> RewardScorer | None:
    """A second reward model on the judge split (disjoint from the reward model's data), or None if disabled."""
    judge_pairs = load_arrow(paths.TOKENIZED / "reward", "tokenize").get("judge")
    if not params.evaluate.judge or judge_pairs is None or len(judge_pairs) == 0:
        return None
    backbone, tokenizer = reward_backbone(params)
    config = dataclasses.replace(params.reward, max_steps=params.evaluate.judge_max_steps, eval_steps=0,
                                 save_steps=10**9, load_best_model_at_end=False)
    trainer, _ = train_reward_model(backbone, tokenizer, judge_pairs, None, config, workdir / "train",
                                    params.common.seed + 1)
    save_reward_model(trainer.model, tokenizer, workdir / "model", {"mean": 0.0, "std": 1.0},
                      params.tokenize.reward_max_length)
    return RewardScorer(workdir / "model", params.tokenize.reward_max_length)


def run(params: Params) -> dict[str, Any]:
    import mlflow
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, seed = params.evaluate, params.common.seed
    prompts = load_arrow(paths.TOKENIZED / "eval_prompts", "tokenize").to_list()[: config.max_prompts or None]
    tokenizer = AutoTokenizer.from_pretrained(require(paths.POLICY, "ppo"))
    models = {"sft": load_sft_model(require(paths.SFT_MODEL, "sft")),
              "ppo": AutoModelForCausalLM.from_pretrained(paths.POLICY)}
    chat = ChatFormat(params.tokenize.template, params.tokenize.markers)
    stop_id = tokenizer.convert_tokens_to_ids(params.ppo.stop_token or chat.stop_token(tokenizer))
    scorer = RewardScorer(require(paths.REWARD_MODEL, "reward"), params.tokenize.reward_max_length)
    texts = [p["prompt"] for p in prompts]

    generations = {name: generate(model, tokenizer, [p["input_ids"] for p in prompts], stop_id, config.max_new_tokens,
                                  config.temperature, config.top_p, config.batch_size, seed)
                   for name, model in models.items()}
    rewards = {name: scorer(texts, generations[name].texts).tolist() for name in MODELS}
    kl = sequence_kl(models["ppo"], models["sft"], generations["ppo"], config.temperature)
    metrics: dict[str, Any] = {"prompts": len(prompts), "win_rate_ppo_vs_sft": compare.win_rate(rewards["ppo"], rewards["sft"])}
    metrics.update(compare.summary(kl, "kl_ppo_sft"))
    held_out = load_arrow(paths.TOKENIZED / "sft", "tokenize")["validation"]
    for name in MODELS:
        metrics.update(compare.summary(rewards[name], f"reward_{name}"))
        metrics.update(compare.summary(generations[name].lengths, f"length_{name}"))
        if len(held_out):
            loss = held_out_loss(models[name], tokenizer, held_out, config.batch_size)
            metrics.update({f"heldout_loss_{name}": loss["loss"], f"heldout_perplexity_{name}": loss["perplexity"]})
    if config.multiple_choice:
        items = read_multiple_choice(Path(config.multiple_choice))
        for name in MODELS:
            metrics[f"mc_accuracy_{name}"] = multiple_choice_accuracy(models[name], tokenizer, items,
                                                                      lambda q: chat.prompt(tokenizer, q))
    workdir = paths.CHECKPOINTS / "judge"
    shutil.rmtree(workdir, ignore_errors=True)
    with tracking.stage_run("evaluate", params.common.experiment, section_dict(config)):
        judge = train_judge(params, workdir)
        if judge is not None:
            judged = {name: judge(texts, generations[name].texts).tolist() for name in MODELS}
            metrics["judge_win_rate_ppo_vs_sft"] = compare.win_rate(judged["ppo"], judged["sft"])
            metrics["judge_agreement"] = compare.preference_agreement(rewards["ppo"], rewards["sft"], judged["ppo"], judged["sft"])
        history = json.loads((paths.POLICY / "ppo_history.json").read_text())
        figures = {"eval_reward_hist.png": reward_histograms(rewards["sft"], rewards["ppo"]),
                   "ppo_training.png": training_curves(history)}
        samples = [{"prompt": t, "sft": s, "ppo": p, "reward_sft": round(rs, 4), "reward_ppo": round(rp, 4)}
                   for t, s, p, rs, rp in zip(texts, generations["sft"].texts, generations["ppo"].texts,
                                              rewards["sft"], rewards["ppo"])]
        targets = [paths.metrics_file("evaluate"), paths.METRICS / "eval_samples.json", *(paths.PLOTS / f for f in figures)]
        with staged_outputs(*targets) as (metrics_path, samples_path, *plot_paths):
            write_json(metrics_path, metrics)
            write_json(samples_path, samples)
            for figure, path in zip(figures.values(), plot_paths):
                figure.savefig(path, dpi=100)
        mlflow.log_metrics(metrics)
        for name, figure in figures.items():
            mlflow.log_figure(figure, name)
        mlflow.log_table({key: [row[key] for row in samples[: config.samples_logged]] for key in samples[0]},
                         "eval_samples.json")
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"evaluate: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
