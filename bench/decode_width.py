"""Benchmark: decoding tokens/s by batch width (rows sampled at once), side by side on the same prompts.

Run: `python bench/decode_width.py [--prompts 128] [--widths 16 32 64] [--repeats 2] [--out FILE.json]` after the
pipeline's sft stage (it reads models/sft and data/tokenized/eval_prompts, as the default profile writes them).

Evaluation samples `evaluate.batch_size` prompts at once. Each width samples the first `--prompts` eval prompts
(in length-sorted batches, as evaluation does) with `alignflow.rl.sampling.sample`, the SFT model in the dtype
`evaluate.dtype` picks here and evaluation's temperature, top-p and response length. Widths alternate
`--repeats` times; the table shows medians and each width's tokens/s over the narrowest's. `--out` saves the
figures as JSON.
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

from alignflow.timing import cpu_model, machine  # noqa: E402
from bench.record import save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    for needed in ("models/sft", "data/tokenized/eval_prompts"):
        if not (ROOT / needed).exists():
            sys.exit(f"error: {needed} not found: run `dvc repro sft` first")
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignflow.config import load_params
    from alignflow.data.formatting import policy_stop_token
    from alignflow.evaluation.generation import length_batches
    from alignflow.precision import arithmetic, weights_dtype
    from alignflow.rl.sampling import sample

    params = load_params(ROOT / "params.yaml")
    c = params.evaluate
    dtype = weights_dtype("evaluate.dtype", c.dtype)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models/sft/model")
    lm = AutoModelForCausalLM.from_pretrained(ROOT / "models/sft/model", dtype=getattr(torch, dtype)).eval()
    prompts = load_from_disk(str(ROOT / "data/tokenized/eval_prompts"))["input_ids"][: args.prompts]
    stop_id = tokenizer.convert_tokens_to_ids(policy_stop_token(params, tokenizer))
    seconds = {width: [] for width in args.widths}
    tokens = dict.fromkeys(args.widths, 0)
    for _ in range(args.repeats):
        for width in args.widths:
            torch.manual_seed(0)
            began, generated = time.perf_counter(), 0
            for _, rows in length_batches(prompts, width):
                drawn = sample(
                    lm, tokenizer, [prompts[i] for i in rows], stop_id, c.max_new_tokens, 0, c.temperature, c.top_p
                )
                generated += int(drawn.mask.sum())
            seconds[width].append(time.perf_counter() - began)
            tokens[width] = generated
    kind = arithmetic()
    print(
        f"CPU: {cpu_model()}, {kind['threads']} threads, kernels {kind['capability']}, {dtype} weights; "
        f"{len(prompts)} prompts, up to {c.max_new_tokens} new tokens, {args.repeats} repeats\n"
    )
    print("| width | tokens | seconds (median) | tokens/s | vs narrowest |")
    print("|---|---|---|---|---|")
    rates = {width: tokens[width] / statistics.median(seconds[width]) for width in args.widths}
    narrowest = rates[min(args.widths)]
    result = {
        "machine": machine(),
        "kernels": kind["capability"],
        "dtype": dtype,
        "prompts": len(prompts),
        "max_new_tokens": c.max_new_tokens,
        "temperature": c.temperature,
        "top_p": c.top_p,
        "repeats": args.repeats,
        "widths": args.widths,
    }
    for width in args.widths:
        median = statistics.median(seconds[width])
        print(f"| {width} | {tokens[width]} | {median:.1f} | {rates[width]:.0f} | {rates[width] / narrowest:.2f}x |")
        result[f"width_{width}_tokens"] = tokens[width]
        result[f"width_{width}_seconds"] = round(median, 1)
        result[f"width_{width}_tokens_per_second"] = round(rates[width])
        if width != min(args.widths):
            result[f"width_{width}_vs_width_{min(args.widths)}_ratio"] = round(rates[width] / narrowest, 2)
    save(args.out, result)


if __name__ == "__main__":
    main()
