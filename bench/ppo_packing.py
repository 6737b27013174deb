"""Benchmark: PPO's scoring passes on packed samples (ours) vs the padded rows the samples were drawn in.

Run: `python bench/ppo_packing.py [--batches 3] [--repeats 2] [--out FILE.json]` after the pipeline's sft stage (it
reads models/sft and data/tokenized, as the default profile writes them).

Each batch is a PPO rollout of the default recipe (ppo.batch_size responses, ppo.samples_per_prompt per prompt,
ppo.max_new_tokens, temperature, the bf16 sampler copy where `auto` picks it) from the SFT model with a fresh LoRA
adapter. On the same samples, both layouts run what an update runs: the policy's forward pass with gradients and
its backward pass (LoRA, autocast in the precision `auto` picks, gradient checkpointing as configured) and the
reference's forward pass (adapter disabled). Padded: left-padded prompts and right-padded responses, logits at every
response position, as PPO scored before packing. Packed: `alignflow.rl.packed`. Layouts alternate `--repeats`
times per batch; the table shows medians, then the ratio and how far the two layouts' log-probs are apart.
`--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from alignflow.timing import cpu_model, machine  # noqa: E402
from bench.record import save  # noqa: E402


def padded_logprobs(lm, drawn, temperature: float) -> torch.Tensor:
    """Per-token log-probs from the rows as sampled (every response position, padding included)."""
    from alignflow.rl.sampling import last_positions, positions, response_logprobs

    width = drawn.sequences.shape[1]
    logits = lm(
        input_ids=drawn.sequences,
        attention_mask=drawn.attention_mask,
        position_ids=positions(drawn.attention_mask),
        logits_to_keep=last_positions(width, width - drawn.query_length + 1),
        use_cache=False,
    ).logits[:, :-1]
    return response_logprobs(logits, drawn.responses, temperature) * drawn.mask


def packed_logprobs(lm, drawn, temperature: float, layout) -> torch.Tensor:
    from alignflow.rl.packed import sequence_logprobs

    return sequence_logprobs(lm, drawn, temperature, layout)


def scoring_seconds(trainer, drawn, score) -> tuple[float, torch.Tensor]:
    """Seconds for the policy's forward + backward pass and the reference's forward pass; the policy's log-probs."""
    policy = trainer._no_dropout()
    lm = policy.lm
    began = time.perf_counter()
    with trainer.accelerator.autocast():
        logprobs = score(lm, drawn)
        (logprobs * drawn.mask).sum().backward()
        with torch.no_grad(), lm.disable_adapter():
            score(lm, drawn)
    seconds = time.perf_counter() - began
    trainer.optimizer.zero_grad()
    return seconds, logprobs.detach()


def default_trainer():
    """(PolicyGradientTrainer, its config): the default recipe's PPO from models/sft, rewards all zero."""
    for needed in ("models/sft", "data/tokenized/prompts"):
        if not (ROOT / needed).exists():
            sys.exit(f"error: {needed} not found: run `dvc repro sft` first")
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from alignflow.config import load_params
    from alignflow.data.formatting import policy_stop_token
    from alignflow.models.loading import load_pretrained
    from alignflow.rl.ppo import PolicyGradientTrainer, set_seed
    from alignflow.training.sft import trainable_policy

    params = load_params(ROOT / "params.yaml")
    config = replace(params.ppo, curve_every=0)
    tokenizer = load_pretrained(AutoTokenizer, ROOT / "models/sft/model")
    prompts = load_from_disk(str(ROOT / "data/tokenized/prompts")).to_list()
    set_seed(params.common.seed)
    lm = trainable_policy(ROOT / "models/sft", config.tuning, config.lora)

    def no_reward(prompts, responses) -> torch.Tensor:
        return torch.zeros(len(responses))

    trainer = PolicyGradientTrainer(
        lm, tokenizer, no_reward, prompts, config, policy_stop_token(params, tokenizer), params.common.seed
    )
    return trainer, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=3, help="rollouts scored (each one PPO update's batch)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of both layouts per batch")
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    from alignflow.precision import arithmetic

    trainer, config = default_trainer()
    layout = trainer.accelerator.unwrap_model(trainer.policy).layout
    layouts = {
        "padded (as sampled)": lambda lm, drawn: padded_logprobs(lm, drawn, config.temperature),
        "packed (ours)": lambda lm, drawn: packed_logprobs(lm, drawn, config.temperature, layout),
    }
    seconds = {name: [0.0] * args.repeats for name in layouts}  # per repeat, summed over the rollouts
    positions = {name: 0 for name in layouts}
    real, differences = 0, []
    for update in range(args.batches):
        drawn = trainer.rollout(trainer._batch_prompts(update))[0].samples
        real += int(drawn.attention_mask.sum())
        positions["padded (as sampled)"] += drawn.sequences.numel()
        positions["packed (ours)"] += trainer.accelerator.unwrap_model(trainer.policy).pack(drawn).input_ids.numel()
        kept = {}
        for repeat in range(args.repeats):
            for name, score in layouts.items():
                took, kept[name] = scoring_seconds(trainer, drawn, score)
                seconds[name][repeat] += took
        gap = (kept["packed (ours)"] - kept["padded (as sampled)"]).abs() * drawn.mask
        differences.append((float(gap.max()), float(gap.sum() / drawn.mask.sum())))
    kind = arithmetic()
    print(
        f"CPU: {cpu_model()}, {kind['threads']} threads, kernels {kind['capability']}, "
        f"native bf16: {kind['native_bf16']}"
    )
    print(f"{args.batches} rollouts of {config.batch_size} responses, {real} real tokens, {args.repeats} repeats\n")
    print("| layout | positions computed | real share | seconds per update (median) |")
    print("|---|---|---|---|")
    medians = {name: statistics.median(values) / args.batches for name, values in seconds.items()}
    for name in layouts:
        print(f"| {name} | {positions[name]} | {real / positions[name]:.0%} | {medians[name]:.2f} |")
    ratio = medians["padded (as sampled)"] / medians["packed (ours)"]
    print(f"\npacked vs padded: {ratio:.2f}x faster (policy forward + backward and reference forward)")
    print(
        "log-prob difference, packed vs padded: max "
        f"{max(d[0] for d in differences):.2e}, mean per token {statistics.mean(d[1] for d in differences):.2e}"
    )
    result = {
        "machine": machine(),
        "kernels": kind["capability"],
        "batches": args.batches,
        "repeats": args.repeats,
        "responses_per_rollout": config.batch_size,
        "real_tokens": real,
    }
    for name, key in (("padded (as sampled)", "padded"), ("packed (ours)", "packed")):
        result[f"{key}_positions_computed"] = positions[name]
        result[f"{key}_real_share"] = round(real / positions[name], 3)
        result[f"{key}_seconds_per_update"] = round(medians[name], 2)
    result |= {
        "packed_speedup": round(ratio, 2),
        "logprob_max_difference": float(f"{max(d[0] for d in differences):.2e}"),
        "logprob_mean_difference_per_token": float(f"{statistics.mean(d[1] for d in differences):.2e}"),
    }
    save(args.out, result)


if __name__ == "__main__":
    main()
