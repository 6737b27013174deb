"""Benchmark: IFEval's greedy decoding with the batch kept full against fixed batches, and its in-place KV cache
against transformers' DynamicCache, side by side.

Run: `python bench/greedy_refill.py [--prompts 64] [--max-new-tokens 512] [--width 32] [--out FILE.json]` after
the pipeline's ingest stage (it reads models/base). Both ways answer the same seeded IFEval prompts greedily with
the base model in the dtype `evaluate.dtype` picks here: fixed length-sorted batches of `--width`
(`alignflow.rl.sampling.sample`, finished rows leave their batch) and `alignflow.evaluation.greedy.decode_greedy`
(a finished row goes to the next prompt), the latter once more with transformers' `DynamicCache` in place of
`alignflow.rl.kv_cache` (which writes a step in place instead of copying the cache). It checks that all give the
same answers, prints a table and ends with
the ratio of their times; `--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from alignflow.timing import machine  # noqa: E402
from bench.record import save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (ROOT / "models/base").exists():
        sys.exit("error: models/base not found: run `dvc repro ingest` first")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignflow.config import load_params
    from alignflow.data.formatting import policy_stop_token, prepare_tokenizer
    from alignflow.evaluation.generation import length_batches
    from alignflow.evaluation.greedy import decode_greedy
    from alignflow.evaluation.ifeval import read_ifeval, seeded_subset
    from alignflow.precision import weights_dtype
    from alignflow.rl.sampling import sample

    params = load_params(ROOT / "params.yaml")
    dtype = weights_dtype("evaluate.dtype", params.evaluate.dtype)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models/base")
    chat = prepare_tokenizer(tokenizer, params.tokenize)
    lm = AutoModelForCausalLM.from_pretrained(ROOT / "models/base", dtype=getattr(torch, dtype)).eval()
    items = seeded_subset(read_ifeval(ROOT / params.evaluate.ifeval.path), args.prompts, params.common.seed)
    prompts = [tokenizer(chat.prompt(tokenizer, i.prompt), add_special_tokens=False)["input_ids"] for i in items]
    stop_id = tokenizer.convert_tokens_to_ids(policy_stop_token(params, tokenizer))

    began = time.perf_counter()
    fixed = [None] * len(prompts)
    for _, rows in length_batches(prompts, args.width):
        drawn = sample(lm, tokenizer, [prompts[i] for i in rows], stop_id, args.max_new_tokens, temperature=0.0)
        for row, index in enumerate(rows):
            done = bool(drawn.finished[row])
            fixed[index] = (drawn.responses[row][: int(drawn.mask[row].sum()) - done].tolist(), done)
    fixed_seconds = time.perf_counter() - began
    began = time.perf_counter()
    answers, finished = decode_greedy(lm, prompts, stop_id, tokenizer.pad_token_id, args.max_new_tokens, args.width)
    refill_seconds = time.perf_counter() - began
    from transformers import DynamicCache

    import alignflow.rl.sampling as sampling

    sampling.growing_cache = lambda config: DynamicCache(config=config)
    began = time.perf_counter()
    copied = decode_greedy(lm, prompts, stop_id, tokenizer.pad_token_id, args.max_new_tokens, args.width)
    copying_seconds = time.perf_counter() - began
    same = sum(f == (a, d) for f, a, d in zip(fixed, answers, finished))
    same_cached = sum(a == c for a, c in zip(answers, copied[0]))
    tokens = sum(len(a) + d for a, d in zip(answers, finished))
    result = {
        "machine": machine(),
        "dtype": dtype,
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "width": args.width,
        "tokens": tokens,
        "unfinished": round(1 - sum(finished) / len(finished), 4),
        "same_answers": same,
        "same_answers_dynamic_cache": same_cached,
        "fixed_batches_seconds": round(fixed_seconds, 1),
        "refilled_batch_seconds": round(refill_seconds, 1),
        "dynamic_cache_seconds": round(copying_seconds, 1),
        "speedup": round(fixed_seconds / refill_seconds, 2),
        "in_place_cache_speedup": round(copying_seconds / refill_seconds, 2),
    }
    print(
        f"CPU: {result['machine']['cpu']}, {dtype} weights; {len(prompts)} IFEval prompts, greedy up to "
        f"{args.max_new_tokens} tokens, width {args.width}; {tokens} tokens, {result['unfinished']:.0%} cut; "
        f"same answers {same}/{len(prompts)} and {same_cached}/{len(prompts)}\n"
    )
    print("| decoding | seconds | tokens/s |\n|---|---|---|")
    print(f"| fixed batches | {fixed_seconds:.1f} | {tokens / fixed_seconds:.0f} |")
    print(f"| batch kept full | {refill_seconds:.1f} | {tokens / refill_seconds:.0f} |")
    print(f"| batch kept full, DynamicCache | {copying_seconds:.1f} | {tokens / copying_seconds:.0f} |")
    save(args.out, result)
    print(f"\nbatch kept full / fixed batches: {result['speedup']:.2f}x faster")
    print(f"in-place cache / DynamicCache: {result['in_place_cache_speedup']:.2f}x faster")


if __name__ == "__main__":
    main()
