"""Benchmark: rollout sampling, the old way (transformers' generate, LoRA adapter unmerged, batches of 8 in data
order, every row decoded until the batch's longest ends) vs ours (`alignflow.rl.sampling.sample`: adapter folded
into the weights, length-sorted batches of --batch-size, rows leave the batch at their stop token), in float32 and
from the bfloat16 sampler copy PPO decodes with by default (`ppo.sampling_dtype`).

Run: `python bench/rollout.py [--prompts 64] [--max-new-tokens 64] [--batch-size 32] [--repeats 2] [--out FILE.json]`
after the pipeline's ingest and tokenize stages (it reads models/sft/model, else models/base, and the tokenized eval
prompts). Both ways sample from the same weights (a LoRA adapter with random, non-zero B on q/v, as after some
training) with a KV cache, at temperature 1, for the same prompts; runs alternate old/new and the table shows
medians. The last lines print the speedups in episodes/s; `--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from alignflow.rl.ppo import copy_weights, sampler_copy  # noqa: E402
from alignflow.rl.sampling import sample  # noqa: E402
from alignflow.timing import machine  # noqa: E402
from bench.record import save  # noqa: E402

OLD_BATCH = 8


def load(lora_seed: int = 0):
    from datasets import load_from_disk
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ROOT / "models/sft/model" if (ROOT / "models/sft/model").is_dir() else ROOT / "models/base"
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "data/tokenized/tokenizer")
    torch.manual_seed(lora_seed)
    lm = get_peft_model(
        AutoModelForCausalLM.from_pretrained(folder),
        LoraConfig(
            r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
        ),
    ).eval()
    prompts = load_from_disk(str(ROOT / "data/tokenized/eval_prompts"))["input_ids"]
    return lm, tokenizer, prompts, folder


def generate_sample(lm, tokenizer, prompts, stop: int, max_new_tokens: int) -> int:
    """The old sampler: transformers' generate (KV cache; finished rows keep being decoded as padding)."""
    from alignflow.rl.sampling import pad_left, response_mask

    queries, mask = pad_left(prompts, tokenizer.pad_token_id)
    sequences = lm.generate(
        input_ids=queries,
        attention_mask=mask,
        do_sample=True,
        top_k=0,
        top_p=1.0,
        temperature=1.0,
        max_new_tokens=max_new_tokens,
        eos_token_id=stop,
        pad_token_id=tokenizer.pad_token_id,
    )
    return int(response_mask(sequences[:, queries.shape[1] :], stop).sum())


def run(
    lm, tokenizer, prompts, batch_size: int, max_new_tokens: int, merged: bool, sort: bool, sampler=None
) -> tuple[float, int]:
    """(seconds, generated tokens) for one response per prompt; the old way is the unmerged, unsorted one. With a
    `sampler`, the adapter-merged weights are copied into it first (timed, as PPO does before each rollout)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i])) if sort else list(range(len(prompts)))
    stop = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    torch.manual_seed(0)
    start, tokens = time.perf_counter(), 0
    model = lm
    if sampler is not None:
        copy_weights(lm, sampler, with_adapter=True)
        model = sampler
    elif merged:
        lm.merge_adapter()
    for first in range(0, len(order), batch_size):
        batch = [prompts[i] for i in order[first : first + batch_size]]
        if merged:
            tokens += int(sample(model, tokenizer, batch, stop, max_new_tokens).mask.sum())
        else:
            tokens += generate_sample(lm, tokenizer, batch, stop, max_new_tokens)
    seconds = time.perf_counter() - start
    if merged and sampler is None:
        lm.unmerge_adapter()
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    lm, tokenizer, prompts, folder = load()
    prompts = prompts[: args.prompts]
    ours = dict(batch_size=args.batch_size, merged=True, sort=True)
    ways = {
        "old: generate, unmerged adapter, batch 8": dict(batch_size=OLD_BATCH, merged=False, sort=False),
        f"ours: merged, batch {args.batch_size}, sorted, early exit": ours,
        "ours, from the bfloat16 sampler copy": dict(ours, sampler=sampler_copy(lm, "bfloat16")),
    }
    run(lm, tokenizer, prompts[:4], 4, 4, merged=False, sort=False)  # warm-up
    timings: dict[str, list[tuple[float, int]]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            timings[name].append(run(lm, tokenizer, prompts, max_new_tokens=args.max_new_tokens, **way))
    print(
        f"model {folder.relative_to(ROOT)}, {len(prompts)} prompts, up to {args.max_new_tokens} new tokens, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'sampling':<48} {'seconds':>8} {'episodes/s':>11} {'tokens/s':>9}")
    rates = {}
    result = {
        "machine": machine(),
        "model": str(folder.relative_to(ROOT)),
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "old_batch_size": OLD_BATCH,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
    }
    for (name, runs), key in zip(timings.items(), ("old", "ours", "ours_bf16_sampler")):
        seconds = statistics.median(s for s, _ in runs)
        tokens = statistics.median(t for _, t in runs)
        rates[name] = len(prompts) / seconds
        print(f"{name:<48} {seconds:>8.1f} {rates[name]:>11.2f} {tokens / seconds:>9.1f}")
        result[f"{key}_seconds"] = round(seconds, 1)
        result[f"{key}_episodes_per_second"] = round(rates[name], 2)
        result[f"{key}_tokens_per_second"] = round(tokens / seconds, 1)
    old, *new = rates.values()
    print(f"speedup (episodes/s, ours / old): {new[0] / old:.2f}x; bfloat16 sampler / old: {new[1] / old:.2f}x")
    result["ours_speedup"] = round(new[0] / old, 2)
    result["bf16_sampler_speedup"] = round(new[1] / old, 2)
    save(args.out, result)


if __name__ == "__main__":
    main()
