"""Benchmark: transformers' plain attention ("eager", what we train with on CPU) vs torch's fused SDPA kernel.

Run: `python bench/attention_kernels.py [--workloads reward,sft,ppo,decoding] [--steps 12] [--batches 2]
[--out FILE.json]` after the pipeline's sft stage (it reads models/, data/tokenized and params.yaml as the default
profile writes them).

Four workloads, each in the precision `auto` picks here:
- reward: the reward model's training step (backbone per `reward.backbone`, reward.batch_size pairs of the tokenized
  training groups, chosen and rejected padded together and dropout off as TRL's RewardTrainer has them, the
  pairwise loss with margin, an AdamW step);
- sft: the SFT step (models/base with params.yaml's LoRA, sft.batch_size examples of data/tokenized/sft in packed
  rows, an AdamW step);
- ppo: PPO's scoring passes on `--batches` rollouts of the default recipe (the policy's forward and backward pass,
  the reference's forward pass; as `bench/ppo_packing.py` runs them);
- decoding: PPO's sampler drawing those rollouts' prompts, every response `--tokens` long (so both kernels decode
  the same number of tokens), which is why sampling switches back to SDPA.
For reward and sft, two copies of the same freshly built model train on the same batches, one per kernel, taking
turns step by step (the machine's noise falls on both); the first step of each is a warm-up. PPO's passes and
decoding switch one model's kernel and alternate `--repeats` times. The table shows median seconds per step, the
ratio, and how far the two kernels' losses (per-token log-probs for ppo) are apart, or decoding's tokens/s;
`--out FILE.json` saves those figures and the settings as JSON.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from alignflow.timing import cpu_model, machine  # noqa: E402
from alignflow.training.common import transformers_model  # noqa: E402
from bench.record import save  # noqa: E402

KERNELS = ("eager", "sdpa")


def set_kernel(model, kernel: str) -> None:
    transformers_model(model).set_attn_implementation(kernel)


def autocast(setting: str, mode: str):
    from alignflow.precision import mixed_precision

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_precision(setting, mode) == "bf16")


def race(build: Callable[[], torch.nn.Module], batches: list, loss_of, precision) -> dict[str, list[float]]:
    """Seconds and losses per step of two copies of `build()`, one per kernel, taking turns on the same batches."""
    first = build()
    models = {"eager": first, "sdpa": copy.deepcopy(first)}
    optimizers = {}
    for kernel, model in models.items():
        set_kernel(model, kernel)
        model.train()
        optimizers[kernel] = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    seconds: dict[str, list[float]] = {kernel: [] for kernel in KERNELS}
    losses: dict[str, list[float]] = {kernel: [] for kernel in KERNELS}
    for batch in batches:
        for kernel, model in models.items():
            began = time.perf_counter()
            with precision:
                loss = loss_of(model, batch)
            loss.backward()
            optimizers[kernel].step()
            optimizers[kernel].zero_grad()
            seconds[kernel].append(time.perf_counter() - began)
            losses[kernel].append(float(loss.detach()))
    return {
        f"{kernel} {what}": values[kernel][1:]
        for what, values in (("s", seconds), ("loss", losses))
        for kernel in KERNELS
    }


def reward_workload(params, steps: int) -> dict[str, list[float]]:
    from datasets import load_from_disk
    from transformers import AutoTokenizer, set_seed
    from trl.trainer.utils import disable_dropout_in_model

    from alignflow import paths
    from alignflow.training.reward import build_reward_model, with_margins

    config = params.reward
    backbone = ROOT / paths.reward_backbone(config.backbone)[1]
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    pairs = with_margins(load_from_disk(str(ROOT / "data/tokenized/reward"))["train"], config.margin_scale)
    order = list(range(len(pairs)))
    random.Random(0).shuffle(order)
    batches = []
    for step in range(steps + 1):
        rows = [pairs[i] for i in order[step * config.batch_size : (step + 1) * config.batch_size]]
        ids = [row["chosen_ids"] for row in rows] + [row["rejected_ids"] for row in rows]
        batch = dict(tokenizer.pad({"input_ids": ids}, return_tensors="pt"))
        batches.append((batch, torch.tensor([row["margin"] for row in rows])))

    def build():
        set_seed(0)
        model = build_reward_model(backbone, tokenizer)
        disable_dropout_in_model(model)  # as RewardTrainer does (RewardConfig.disable_dropout)
        return model

    def loss_of(model, batch):
        inputs, margin = batch
        scores = model(**inputs).logits[:, 0].float()
        chosen, rejected = scores.chunk(2)
        return -torch.nn.functional.logsigmoid(chosen - rejected - margin).mean()

    return race(build, batches, loss_of, autocast("reward.mixed_precision", config.mixed_precision))


def sft_workload(params, steps: int) -> dict[str, list[float]]:
    from datasets import load_from_disk
    from transformers import AutoTokenizer, set_seed

    from alignflow.training.packing import PackedCollator
    from alignflow.training.sft import build_sft_model

    config = params.sft
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "data/tokenized/tokenizer")
    data = load_from_disk(str(ROOT / "data/tokenized/sft"))["train"]
    order = list(range(len(data)))
    random.Random(0).shuffle(order)
    collate = PackedCollator(tokenizer.pad_token_id)
    examples = [{k: data[i][k] for k in ("input_ids", "labels")} for i in order]
    size = config.batch_size
    batches = [collate(examples[step * size : (step + 1) * size]) for step in range(steps + 1)]

    def build():
        set_seed(0)
        return build_sft_model(ROOT / "models/base", tokenizer, config)

    return race(
        build,
        batches,
        lambda model, batch: model(**batch).loss,
        autocast("sft.mixed_precision", config.mixed_precision),
    )


def ppo_workload(batches: int, repeats: int) -> dict[str, list[float]]:
    sys.path.insert(0, str(ROOT / "bench"))
    from ppo_packing import default_trainer, packed_logprobs, scoring_seconds

    trainer, config = default_trainer()
    policy = trainer.accelerator.unwrap_model(trainer.policy)
    result: dict[str, list[float]] = {f"{kernel} s": [] for kernel in KERNELS}
    result["gap"] = []
    for update in range(batches):
        drawn = trainer.rollout(trainer._batch_prompts(update))[0].samples
        seconds = {kernel: [] for kernel in KERNELS}
        kept = {}
        for _ in range(repeats):
            for kernel in KERNELS:
                set_kernel(policy.lm, kernel)
                took, kept[kernel] = scoring_seconds(
                    trainer, drawn, lambda lm, d: packed_logprobs(lm, d, config.temperature, policy.layout)
                )
                seconds[kernel].append(took)
        for kernel in KERNELS:
            result[f"{kernel} s"].append(statistics.median(seconds[kernel]))
        result["gap"].append(float(((kept["eager"] - kept["sdpa"]).abs() * drawn.mask).sum() / drawn.mask.sum()))
    return result


def decoding_workload(batches: int, repeats: int, tokens: int) -> dict[str, list[float]]:
    sys.path.insert(0, str(ROOT / "bench"))
    from ppo_packing import default_trainer

    from alignflow.rl.sampling import sample

    trainer, config = default_trainer()
    result: dict[str, list[float]] = {f"{kernel} s": [] for kernel in KERNELS}
    for update in range(batches):
        prompts = [row["input_ids"] for row in trainer._batch_prompts(update)]
        seconds = {kernel: [] for kernel in KERNELS}
        for _ in range(repeats):
            for kernel in KERNELS:
                with torch.no_grad(), trainer.sampling_model() as lm:
                    set_kernel(lm, kernel)
                    began = time.perf_counter()
                    sample(lm, trainer.tokenizer, prompts, trainer.stop_id, tokens, tokens, config.temperature)
                    seconds[kernel].append(time.perf_counter() - began)
        for kernel in KERNELS:
            result[f"{kernel} s"].append(statistics.median(seconds[kernel]))
    result["tokens"] = [len(prompts) * tokens]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed reward and SFT steps (after 1 warm-up)")
    parser.add_argument("--batches", type=int, default=2, help="PPO rollouts scored")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of both kernels per rollout")
    parser.add_argument("--tokens", type=int, default=96, help="tokens decoded per response")
    parser.add_argument("--workloads", default="reward,sft,ppo,decoding", help="comma-separated subset")
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    for needed in ("models/sft", "models/base", "data/tokenized/reward", "data/tokenized/sft"):
        if not (ROOT / needed).exists():
            sys.exit(f"error: {needed} not found: run `dvc repro sft` first")
    from transformers.utils import logging as hf_logging

    from alignflow.config import load_params
    from alignflow.precision import arithmetic

    hf_logging.set_verbosity_error()
    params = load_params(ROOT / "params.yaml")
    kind = arithmetic()
    print(f"CPU: {cpu_model()}, {kind['threads']} threads, native bf16: {kind['native_bf16']}", flush=True)
    print("\n| workload | eager s/step | sdpa s/step | eager vs sdpa | notes |\n|---|---|---|---|---|")
    workloads = {
        "reward": ("reward model step", lambda: reward_workload(params, args.steps)),
        "sft": ("SFT step", lambda: sft_workload(params, args.steps)),
        "ppo": ("PPO scoring passes", lambda: ppo_workload(args.batches, args.repeats)),
        "decoding": ("PPO sampling (per rollout)", lambda: decoding_workload(args.batches, args.repeats, args.tokens)),
    }
    record = {
        "machine": machine(),
        "workloads": args.workloads,
        "steps": args.steps,
        "batches": args.batches,
        "repeats": args.repeats,
        "tokens_per_response": args.tokens,
    }
    for key in args.workloads.split(","):
        name, run = workloads[key]
        result = run()
        eager, sdpa = (statistics.median(result[f"{kernel} s"]) for kernel in KERNELS)
        record[f"{key}_eager_seconds_per_step"] = round(eager, 3)
        record[f"{key}_sdpa_seconds_per_step"] = round(sdpa, 3)
        record[f"{key}_eager_speedup"] = round(sdpa / eager, 2)
        if "tokens" in result:
            apart = f"{result['tokens'][0] / eager:.0f} against {result['tokens'][0] / sdpa:.0f} tokens/s"
            record[f"{key}_eager_tokens_per_second"] = round(result["tokens"][0] / eager)
            record[f"{key}_sdpa_tokens_per_second"] = round(result["tokens"][0] / sdpa)
        elif "gap" in result:
            apart = f"log-probs {statistics.mean(result['gap']):.1e} per token"
            record[f"{key}_logprob_gap_per_token"] = float(f"{statistics.mean(result['gap']):.2e}")
        else:
            gaps = [abs(a - b) for a, b in zip(result["eager loss"], result["sdpa loss"], strict=True)]
            apart = f"loss {max(gaps):.1e} at most ({statistics.mean(result['eager loss']):.3f} mean)"
            record[f"{key}_max_loss_gap"] = float(f"{max(gaps):.2e}")
            record[f"{key}_mean_loss"] = round(statistics.mean(result["eager loss"]), 4)
        print(f"| {name} | {eager:.2f} | {sdpa:.2f} | {sdpa / eager:.2f}x | {apart} |", flush=True)
    save(args.out, record)


if __name__ == "__main__":
    main()
