"""align: the policy slot. The SFT model in, models/policy/ out (merged LM + tokenizer + training history).

Run: `python -m alignflow.stages.align` (ppo also as `accelerate launch -m alignflow.stages.align`; with
`compute.backend: ray` every method trains on Ray Train workers). `align.method` picks the method: `ppo`, our
online RL against the reward model (alignflow/rl; `ppo.advantage`: gae, rloo or grpo), or an offline method
through TRL (dpo, ipo, kto, simpo: alignflow/training/preference.py) on the reward model's comparison groups.
Evaluate, the gate and register read only models/policy, so they treat every method alike.
Checkpoints go to checkpoints/<method>/ (every `checkpoint_every` updates or `save_steps` steps); rerunning resumes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.data.formatting import ChatFormat, policy_stop_token
from alignflow.errors import ConfigError
from alignflow.io import staged_outputs, write_json, write_jsonl
from alignflow.models.loading import load_pretrained
from alignflow.models.reward import RewardScorer
from alignflow.scale.launch import train_here_or_on_ray
from alignflow.scale.worker import checkpoint_callback, checkpoint_saved
from alignflow.stages.common import cli, load_arrow, require
from alignflow.training.common import (
    last_checkpoint,
    mlflow_callback,
    params_snapshot,
    prepare_checkpoint_dir,
    trainer_metrics,
)
from alignflow.training.sft import trainable_policy

SAMPLES_LOGGED = 4
SUMMARISED = ("reward_mean", "score_mean", "kl", "entropy", "response_length", "unfinished")
"""Per-update statistics that metrics/align.json reports at the end of training, beside every verifier's reward."""
HISTORY = "history.json"
"""Per-update (ppo) or per-logged-step (offline) training statistics, beside the policy; evaluate plots them."""
SAMPLED_PAIRS = "sampled_pairs.jsonl"
"""With `pairs: sampled`, the pairs the policy learned from, beside it: what the verifiers chose is inspectable."""


def run(params: Params) -> dict[str, Any]:
    inputs = (
        paths.TOKENIZED / "prompts",
        paths.TOKENIZED / "reward",
        paths.SFT_MODEL,
        paths.REWARD_MODEL,
        paths.JUDGE_MODEL,
    )
    return train_here_or_on_ray("align", train, params, inputs, (paths.POLICY, paths.metrics_file("align")))


def train(params: Params) -> dict[str, Any]:
    """Train the policy with `align.method` and write it (rank 0); returns the stage's metrics."""
    method = params.align.method
    checkpoints = paths.CHECKPOINTS / method
    settings = {"method": method, **section_dict(getattr(params, method))}
    with tracking.stage_run("align", params.common.experiment, settings):
        metrics = (train_ppo if method == "ppo" else train_offline)(params, checkpoints)
    if tracking.is_main_process():
        shutil.rmtree(checkpoints, ignore_errors=True)
        print(f"align ({method}): {metrics}")
    return metrics


def save_policy(
    lm, tokenizer, history: list[dict[str, Any]], metrics: dict[str, Any], extra: Callable[[Path], None] | None = None
) -> None:
    """models/policy and metrics/align.json, atomically; `extra(folder)` adds a method's own files."""
    with staged_outputs(paths.POLICY, paths.metrics_file("align")) as (out_dir, metrics_path):
        lm.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        write_json(out_dir / HISTORY, history)
        write_json(metrics_path, metrics)
        if extra:
            extra(out_dir)


def train_offline(params: Params, checkpoints: Path) -> dict[str, Any]:
    """DPO, IPO, KTO or SimPO with TRL from the SFT model, on the reward model's training comparison groups."""
    from transformers import AutoTokenizer

    from alignflow.training.preference import (
        check_training_data,
        merged_policy,
        preference_examples,
        train_preference,
        training_history,
        unpaired_examples,
    )

    method, seed = params.align.method, params.common.seed
    config = getattr(params, method)
    tokenizer = load_pretrained(AutoTokenizer, require(paths.SFT_MODEL / "model", "sft"))
    stop_token = policy_stop_token(params, tokenizer)
    sampling: dict[str, Any] = {}
    if config.pairs == "sampled":
        source = paths.TOKENIZED / "prompts"
        pairs, sampling = sample_pairs(params, config, tokenizer, stop_token)
    else:
        source = paths.TOKENIZED / "reward"
        pairs = load_arrow(source, "tokenize")["train"].to_list()
    chat = ChatFormat(params.tokenize.template, params.tokenize.markers)
    examples = preference_examples(pairs, tokenizer, chat, stop_token)
    if method == "kto":
        examples = unpaired_examples(examples, seed)
    check_training_data(method, examples, f"{source} ({'sampled pairs' if sampling else 'train split'})")
    resuming = prepare_checkpoint_dir(checkpoints, params_snapshot(params.common, config, params.tokenize))
    trainer, result = train_preference(
        method,
        require(paths.SFT_MODEL, "sft"),
        tokenizer,
        examples,
        config,
        params.tokenize.max_length,
        checkpoints,
        seed,
        last_checkpoint(checkpoints) if resuming else None,
        [mlflow_callback(), checkpoint_callback()],
    )
    history = training_history(trainer.state.log_history)
    last = history[-min(3, len(history)) :]
    metrics: dict[str, Any] = {
        **trainer_metrics(trainer, result),
        **sampling,
        "examples": len(examples),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }
    for key in ("rewards_margins", "rewards_accuracies"):
        values = [entry[key] for entry in last if key in entry]
        if values:
            metrics[f"final_{key}"] = round(sum(values) / len(values), 4)
    if tracking.is_main_process():
        keep_pairs = (lambda folder: write_jsonl(folder / SAMPLED_PAIRS, pairs)) if sampling else None
        save_policy(merged_policy(trainer.model).float(), tokenizer, history, metrics, keep_pairs)
    tracking.log_metrics(metrics)
    return metrics


def sample_pairs(params: Params, config, tokenizer, stop_token: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rejection-sampling pairs from the SFT model's answers to the policy prompts (`pairs: sampled`)."""
    from alignflow.training.sampled_pairs import sampled_pairs
    from alignflow.training.sft import load_sft_model

    started = time.monotonic()
    rows = load_arrow(paths.TOKENIZED / "prompts", "tokenize").to_list()
    scorer = RewardScorer(require(paths.REWARD_MODEL, "reward"), params.tokenize.reward_max_length)
    lm = load_sft_model(require(paths.SFT_MODEL, "sft"))
    stop_id = tokenizer.convert_tokens_to_ids(stop_token)
    where = f"{params.align.method}.sampled_pairs"
    pairs, stats = sampled_pairs(lm, tokenizer, rows, scorer, config.sampled_pairs, stop_id, params.common.seed, where)
    del lm
    return pairs, {**stats, "sampling_seconds": round(time.monotonic() - started, 1)}


def dev_split(prompts: list[dict[str, Any]], config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(PPO's training pool, the dev split the curve probes): the last `curve_prompts` prompts are held out, so
    the update kept is picked on prompts the policy never trained on and the eval prompts are never read."""
    held = config.curve_prompts if config.curve_every else 0
    if held and len(prompts) <= held:
        raise ConfigError(
            f"ppo.curve_prompts: holding out {held} of the {len(prompts)} policy prompts as the dev split leaves "
            "none to train on"
        )
    return (prompts[:-held], prompts[-held:]) if held else (prompts, [])


def train_ppo(params: Params, checkpoints: Path) -> dict[str, Any]:
    """Our PPO (GAE, RLOO or GRPO advantages) against the reward model, with the learning-curve probe."""
    import mlflow
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from alignflow.evaluation.curve import AlignmentProbe
    from alignflow.rl.ppo import PolicyGradientTrainer, rng_state, set_rng_state, set_seed

    config, seed = params.ppo, params.common.seed
    prompts, dev_prompts = dev_split(load_arrow(paths.TOKENIZED / "prompts", "tokenize").to_list(), config)
    tokenizer = load_pretrained(AutoTokenizer, require(paths.SFT_MODEL / "model", "sft"))
    scorer = RewardScorer(require(paths.REWARD_MODEL, "reward"), params.tokenize.reward_max_length)
    stop_token = policy_stop_token(params, tokenizer)
    resuming = prepare_checkpoint_dir(checkpoints, params_snapshot(params.common, config, params.tokenize))
    set_seed(seed)  # the fresh adapter's initialisation is part of the run (unseeded, no two runs were alike)
    trainer = PolicyGradientTrainer(
        trainable_policy(require(paths.SFT_MODEL, "sft"), config.tuning, config.lora),
        tokenizer,
        scorer,
        prompts,
        config,
        stop_token,
        seed,
        scorer.stats,
    )
    main_process = trainer.accelerator.is_main_process
    started = time.monotonic()
    probe = None
    if config.curve_every:
        judge = RewardScorer(require(paths.JUDGE_MODEL, "reward"), params.tokenize.reward_max_length)
        scorers = {"reward": scorer, "judge": judge}
        probe = AlignmentProbe(tokenizer, dev_prompts, scorers, trainer.stop_id, params.evaluate, seed, trainer.sources)
        state = rng_state()
        with trainer.sampling_model(reference=True) as sft:
            probe.set_reference(sft)
        set_rng_state(state)
    samples: list[dict[str, Any]] = []
    run_here = []  # updates this process ran (not restored from a checkpoint)

    def log_update(update: int, stats: dict[str, float], texts: list[str]) -> None:
        run_here.append(update)
        if main_process:
            mlflow.log_metrics(stats, step=update)
            samples.extend({"update": update, "response": text} for text in texts[:SAMPLES_LOGGED])
            print(f"ppo update {update}/{config.updates}: " + ", ".join(f"{k}={v:.3f}" for k, v in stats.items()))

    history = trainer.train(
        checkpoints, resume=resuming, on_update=log_update, probe=probe, on_checkpoint=checkpoint_saved
    )
    seconds = time.monotonic() - started
    lm, value_head = trainer.trained_model()
    metrics = update_summary(history)
    metrics.update({f"final_{key}": round(value, 4) for key, value in history[-1].items() if key.startswith("curve_")})
    metrics.update(updates=len(history))
    kept = trainer.best.update if trainer.best is not None and trainer.best.weights is not None else len(history)
    metrics.update(kept_update=kept, **{f"kept_{k}": v for k, v in history[kept - 1].items() if k.startswith("curve_")})
    metrics.update(
        train_seconds=round(seconds, 1), episodes_per_second=round(len(run_here) * config.batch_size / seconds, 3)
    )
    if probe is not None:  # the learning curve's cost (SFT's reference samples and every probe), in train_seconds
        metrics.update(curve_seconds=round(probe.seconds, 1), curve_share=round(probe.seconds / seconds, 3))
    if main_process:

        def ppo_files(out_dir: Path) -> None:
            weights = {k: v.contiguous() for k, v in value_head.state_dict().items()}
            save_file(weights, str(out_dir / "value_head.safetensors"))
            write_json(out_dir / paths.KEPT_UPDATE, {"update": kept, "of": len(history), "keep": config.keep})

        save_policy(lm, tokenizer, history, metrics, ppo_files)
        mlflow.log_metrics(metrics)
        if samples:
            mlflow.log_table(
                {"update": [s["update"] for s in samples], "response": [s["response"] for s in samples]},
                "ppo_samples.json",
            )
    return metrics


def update_summary(history: list[dict[str, float]]) -> dict[str, float]:
    """What training ended at (`final_*`: the mean of the last three updates) and, for the rewards, what it started
    from (`initial_*`), for the sources this run has: the reward model's raw reward only when it is part of the
    reward, a verifier's only where it checked."""
    last = history[-min(3, len(history)) :]
    keys = [key for key in history[0] if key in SUMMARISED or key.startswith("verifier_")]
    summary = {f"final_{k}": round(sum(h[k] for h in last) / len(last), 4) for k in keys if all(k in h for h in last)}
    rewards = [key for key in keys if key in ("reward_mean", "score_mean") or key.startswith("verifier_")]
    return summary | {f"initial_{key}": round(history[0][key], 4) for key in rewards}


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
