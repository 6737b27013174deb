"""Benchmark: PPO's peak memory and time per update with gradient checkpointing (the default) and without.

Run: `python bench/ppo_memory.py [--updates 3] [--repeats 1] [--out FILE.json]` after the pipeline's tokenize stage
(it reads models/base and data/tokenized, as the default profile writes them).

Each setting runs in a process of its own, so that each peak resident set is its own: the default PPO recipe
(params.yaml's LoRA, batch, response length, precision `auto` picks here) on models/base, scored by a rule (words
per response; the reward model does not change what the policy step holds). The processes run one after the other,
alternating `--repeats` times; the table shows each one's peak RSS (as `/usr/bin/time -v` reports it) and median
seconds per update, then the ratios and whether the two trained the same weights bit for bit; `--out` saves the
figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_run(checkpointing: bool, updates: int, weights_out: Path) -> dict:
    """The default PPO recipe for `updates` updates in this process: its peak RSS and seconds per update."""
    import torch
    from datasets import load_from_disk
    from peft import get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignflow.config import load_params
    from alignflow.rl.ppo import PolicyGradientTrainer, set_seed
    from alignflow.training.sft import lora_config

    params = load_params(ROOT / "params.yaml")
    config = replace(params.ppo, updates=updates, curve_every=0, gradient_checkpointing=checkpointing)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "data/tokenized/tokenizer")
    prompts = load_from_disk(str(ROOT / "data/tokenized/prompts")).to_list()
    base = AutoModelForCausalLM.from_pretrained(ROOT / "models/base")
    base.resize_token_embeddings(len(tokenizer))
    set_seed(params.common.seed)
    lm = get_peft_model(base, lora_config(base, config.lora, "CAUSAL_LM"))

    def words(prompts, responses) -> torch.Tensor:
        return torch.tensor([len(response.split()) / 10 for response in responses])

    trainer = PolicyGradientTrainer(lm, tokenizer, words, prompts, config, tokenizer.eos_token, params.common.seed)
    seconds = []
    for _ in range(updates):
        began = time.monotonic()
        trainer.step()
        seconds.append(time.monotonic() - began)
    save_file(trainer._trainable_state(), str(weights_out))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux
    return {"peak_gib": peak_gib, "seconds_per_update": statistics.median(seconds[1:] or seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=3, help="updates per run (the first is not timed)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child == "on", args.updates, args.weights)))
        return
    for needed in ("models/base", "data/tokenized/prompts", "data/tokenized/tokenizer"):
        if not (ROOT / needed).exists():
            sys.exit(f"error: {needed} not found: run `dvc repro tokenize` first")

    from safetensors.torch import load_file

    from alignflow.config import load_params
    from alignflow.precision import arithmetic
    from alignflow.timing import cpu_model, machine
    from bench.record import save

    kind = arithmetic()
    print(f"CPU: {cpu_model()}, kernels {kind['capability']}, bf16 unit {kind.get('bf16_unit', '-')}")
    folder = Path(tempfile.mkdtemp(prefix="alignflow-ppo-memory-"))
    results: dict[str, list[dict]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for setting in results:
            command = [sys.executable, __file__, "--child", setting, "--updates", str(args.updates)]
            command += ["--weights", str(folder / f"{setting}.safetensors")]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    table = {
        setting: (max(r["peak_gib"] for r in runs), statistics.median(r["seconds_per_update"] for r in runs))
        for setting, runs in results.items()
    }
    print(f"\n{'gradient checkpointing':24s} {'peak RSS':>10s} {'s / update':>11s}")
    for setting, (peak, seconds) in table.items():
        print(f"{setting:24s} {peak:8.2f} GiB {seconds:10.1f}")
    (peak_on, seconds_on), (peak_off, seconds_off) = table["on"], table["off"]
    on, off = (load_file(str(folder / f"{setting}.safetensors")) for setting in ("on", "off"))
    same = on.keys() == off.keys() and all(bool((on[k] == off[k]).all()) for k in on)
    print(f"\npeak: {peak_off / peak_on:.2f}x lower with checkpointing ({peak_off - peak_on:.2f} GiB less); "
          f"time per update: {seconds_on / seconds_off:.2f}x; trained weights bit-identical: {same}")  # fmt: skip
    ppo = load_params(ROOT / "params.yaml").ppo
    result = {
        "machine": machine(),
        "kernels": kind["capability"],
        "updates": args.updates,
        "repeats": args.repeats,
        "batch_size": ppo.batch_size,
        "max_new_tokens": ppo.max_new_tokens,
        "with_checkpointing_peak_rss_gib": round(peak_on, 2),
        "without_checkpointing_peak_rss_gib": round(peak_off, 2),
        "with_checkpointing_seconds_per_update": round(seconds_on, 1),
        "without_checkpointing_seconds_per_update": round(seconds_off, 1),
        "peak_rss_without_vs_with_ratio": round(peak_off / peak_on, 2),
        "peak_rss_saved_gib": round(peak_off - peak_on, 2),
        "time_per_update_with_vs_without_ratio": round(seconds_on / seconds_off, 2),
        "trained_weights_bit_identical": same,
    }
    save(args.out, result)


if __name__ == "__main__":
    main()
