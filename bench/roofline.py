"""Benchmark: how far each stage's compute is from what this machine can do (a roofline, measured side by side).

Run: `python bench/roofline.py [--steps 3] [--new-tokens 64] [--out FILE.json]` after the pipeline's tokenize stage
(it reads models/base, models/encoder and data/tokenized, as the default profile writes them).

In one run it measures:
- the attainable matrix-product rate, fp32 and bf16, at the shapes the default models multiply (SmolLM2-135M:
  hidden 576, MLP 1536, vocabulary 49,152; all-MiniLM-L6-v2: hidden 384, MLP 1536), and the memory bandwidth
  (a large tensor copy);
- the achieved rate of each stage's inner work on the default models, in the precision `auto` picks here, with the
  project's own model code: SFT's LoRA training step (batches of sft.batch_size real examples, in the stage's
  layout), the reward model's full training step (reward.batch_size pairs), the policy's decoding (what PPO's
  rollouts and evaluation spend their time on: `alignflow.rl.sampling.sample`, ppo.batch_size rows), the PPO LoRA
  step on those rollouts and reward scoring.

Model FLOPs are counted as MFU counts them: 2 x (parameters of the matrix products) per token forward, plus the
causal attention products; a full training step is 3x the forward, a LoRA step 2x (no weight gradients for frozen
matrices); padding is not useful work. Decoding one token for a batch of B reads every weight once, so its
memory-bound limit is B x bandwidth / weight bytes. Utilization = achieved / attainable (the compute peak of the
stage's dtype, or for decoding the lower of that and the bandwidth bound). The table prints both; `--out` saves
the figures as JSON.
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

from alignflow.config import load_params  # noqa: E402
from alignflow.precision import arithmetic, mixed_precision, weights_dtype  # noqa: E402
from alignflow.timing import cpu_model, machine  # noqa: E402
from bench.record import save  # noqa: E402

POLICY_SHAPES = [(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 49152)]
ENCODER_SHAPES = [(384, 384), (384, 1536), (1536, 384)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def timed(fn, repeats: int = 5) -> float:
    """Median seconds of `fn()` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_rate(rows: int, shapes, dtype) -> float:
    """FLOP/s of a forward pass through `shapes` (in, out) for `rows` tokens: the GEMMs a model runs, no more."""
    weights = [torch.randn(k, n, dtype=dtype) for k, n in shapes]
    inputs = [torch.randn(rows, k, dtype=dtype) for k, _ in shapes]
    flops = sum(2 * rows * k * n for k, n in shapes)

    def products():
        for x, w in zip(inputs, weights):
            torch.matmul(x, w)

    return flops / timed(products)


def bandwidth(megabytes: int = 512) -> float:
    """Bytes/s of a large copy (each byte read once and written once)."""
    source = torch.ones(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    return 2 * source.numel() * 4 / timed(lambda: target.copy_(source))


def matmul_parameters(model) -> int:
    """Weights of the model's matrix products (linear layers, the LM head included; embedding lookups are not)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def attention_flops(config, lengths) -> float:
    """Forward FLOPs of QK^T and AV over sequences of `lengths` (causal: each token attends to half on average)."""
    width = config.num_attention_heads * (config.hidden_size // config.num_attention_heads)
    return sum(2 * 2 * config.num_hidden_layers * n * (n / 2) * width for n in lengths)


def autocast(mode: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16")


def train_steps(model, loss_of, batches, mode: str, lr: float) -> float:
    """Seconds for AdamW steps on batches[1:] after a warm-up step on batches[0]."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()

    def step(batch):
        with autocast(mode):
            loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(batches[0])
    started = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    return time.perf_counter() - started


def sft_workload(params, steps: int):
    from datasets import load_from_disk
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignflow.training.sft import lora_config, training_collator

    tokenizer = AutoTokenizer.from_pretrained(ROOT / "data/tokenized/tokenizer")
    model = AutoModelForCausalLM.from_pretrained(ROOT / "models/base")
    model.resize_token_embeddings(len(tokenizer))
    n = matmul_parameters(model)
    model = get_peft_model(model, lora_config(model, params.sft.lora, "CAUSAL_LM"))
    examples = load_from_disk(str(ROOT / "data/tokenized/sft"))["train"]
    collate, size = training_collator(model, tokenizer, params.sft), params.sft.batch_size
    chunks = [
        [{k: examples[i][k] for k in ("input_ids", "labels")} for i in range(s, s + size)]
        for s in range(0, size * (steps + 1), size)
    ]
    batches = [collate(chunk) for chunk in chunks]
    mode = mixed_precision("sft.mixed_precision", params.sft.mixed_precision)
    seconds = train_steps(model, lambda batch: model(**batch).loss, batches, mode, 1e-4)
    lengths = [len(example["input_ids"]) for chunk in chunks[1:] for example in chunk]
    computed = sum(batch["input_ids"].numel() for batch in batches[1:])
    forward = 2 * n * sum(lengths) + attention_flops(model.config, lengths)
    layout = "packed" if "position_ids" in batches[0] else "padded"
    return (
        "sft (LoRA train step)",
        mode,
        2 * forward / seconds,
        f"{sum(lengths) / computed:.0%} of tokens real ({layout})",
    )


def reward_workload(params, steps: int):
    from datasets import load_from_disk
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models/encoder")
    model = AutoModelForSequenceClassification.from_pretrained(ROOT / "models/encoder", num_labels=1)
    rows = load_from_disk(str(ROOT / "data/tokenized/reward"))["train"]
    size = params.reward.batch_size
    batches = [
        tokenizer.pad(
            [{"input_ids": rows[i][side]} for i in range(s, s + size) for side in ("chosen_ids", "rejected_ids")],
            return_tensors="pt",
        )
        for s in range(0, size * (steps + 1), size)
    ]  # chosen and rejected alternate, as the pairwise loss below reads them
    n = matmul_parameters(model)
    mode = mixed_precision("reward.mixed_precision", params.reward.mixed_precision)

    def pairwise_loss(batch):
        scores = model(**batch).logits.squeeze(-1)
        return -torch.nn.functional.logsigmoid(scores[0::2] - scores[1::2]).mean()

    seconds = train_steps(model, pairwise_loss, batches, mode, 1e-5)
    lengths = [int(n) for batch in batches[1:] for n in batch["attention_mask"].sum(1)]
    forward = 2 * n * sum(lengths) + attention_flops(model.config, lengths)
    training = ("reward (full train step)", mode, 3 * forward / seconds, "")

    model.eval()
    with torch.no_grad():
        seconds = timed(lambda: [model(**batch) for batch in batches[1:]], repeats=2)
    return training, ("reward scoring", mode, forward / seconds, "")


def decode_and_ppo_workloads(params, new_tokens: int, weight_bandwidth: float):
    from datasets import load_from_disk
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignflow.rl.ppo import sampler_copy
    from alignflow.rl.sampling import sample
    from alignflow.training.sft import lora_config

    tokenizer = AutoTokenizer.from_pretrained(ROOT / "data/tokenized/tokenizer")
    base = AutoModelForCausalLM.from_pretrained(ROOT / "models/base")
    base.resize_token_embeddings(len(tokenizer))
    n = matmul_parameters(base)
    prompts = load_from_disk(str(ROOT / "data/tokenized/prompts"))["input_ids"][: params.ppo.batch_size]
    dtype = weights_dtype("ppo.sampling_dtype", params.ppo.sampling_dtype)
    sampler = (sampler_copy(base, dtype) or base).eval()
    stop = tokenizer.eos_token_id
    runs = []

    def rollouts():
        runs.append(sample(sampler, tokenizer, prompts, stop, new_tokens, min_new_tokens=new_tokens))

    seconds = timed(rollouts, repeats=2)
    samples = runs[-1]
    generated = len(prompts) * new_tokens
    context = [len(p) + new_tokens // 2 for p in prompts]
    forward = 2 * n * generated + attention_flops(base.config, context) * new_tokens / max(context)
    weight_bytes = n * torch.finfo(getattr(torch, dtype)).bits // 8
    bound = len(prompts) * weight_bandwidth / weight_bytes  # tokens/s if every step only read the weights
    decode = (
        f"decode ({len(prompts)} rows, {new_tokens} tokens)",
        "bf16" if dtype == "bfloat16" else "no",
        forward / seconds,
        f"{generated / seconds:.0f} tok/s; memory bound {bound:.0f} tok/s ({generated / seconds / bound:.0%})",
    )

    mode = mixed_precision("ppo.mixed_precision", params.ppo.mixed_precision)
    policy = get_peft_model(base, lora_config(base, params.ppo.lora, "CAUSAL_LM")).train()
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
    mask = samples.attention_mask

    def ppo_step():
        with autocast(mode):
            logits = policy(input_ids=samples.sequences, attention_mask=mask).logits
        logits.float().log_softmax(-1).mean().backward()
        optimizer.step()
        optimizer.zero_grad()

    seconds = timed(ppo_step, repeats=2)
    lengths = [int(x) for x in mask.sum(1)]
    forward = 2 * n * sum(lengths) + attention_flops(base.config, lengths)
    return decode, ("ppo (LoRA step on rollouts)", mode, 2 * forward / seconds, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per stage (after one warm-up)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens each rollout row decodes")
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    for needed in ("models/base", "models/encoder", "data/tokenized/sft"):
        if not (ROOT / needed).exists():
            sys.exit(f"error: {needed} not found: run `dvc repro tokenize` first")
    torch.manual_seed(0)
    params = load_params(ROOT / "params.yaml")
    kind = arithmetic()
    print(
        f"CPU: {cpu_model()}, {torch.get_num_threads()} threads, kernels {kind['capability']}, "
        f"native bf16: {kind['native_bf16']}"
    )

    peaks = {
        (name, model): matmul_rate(rows, shapes, dtype)
        for name, dtype in DTYPES.items()
        for model, rows, shapes in (("policy", 1024, POLICY_SHAPES), ("encoder", 2048, ENCODER_SHAPES))
    }
    memory = bandwidth()
    print("\nattainable (GEMMs at the default models' shapes):")
    for (name, model), rate in peaks.items():
        print(f"  {name:4s} {model:7s} {rate / 1e9:8.1f} GFLOP/s")
    print(f"  memory bandwidth {memory / 1e9:.1f} GB/s")

    reward_training, scoring = reward_workload(params, args.steps)
    rows = [
        sft_workload(params, args.steps),
        reward_training,
        scoring,
        *decode_and_ppo_workloads(params, args.new_tokens, memory),
    ]
    result = {
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "kernels": kind["capability"],
        "steps": args.steps,
        "new_tokens": args.new_tokens,
        **{f"{name}_{model}_gemm_gflops": round(rate / 1e9, 1) for (name, model), rate in peaks.items()},
        "memory_bandwidth_gb_per_s": round(memory / 1e9, 1),
    }
    print(f"\n{'stage work':34s} {'precision':9s} {'achieved':>10s} {'attainable':>11s} {'utilization':>11s}  notes")
    keys = ("sft_train_step", "reward_train_step", "reward_scoring", "decode", "ppo_train_step")
    for key, (what, mode, achieved, note) in zip(keys, rows, strict=True):
        model = "encoder" if what.startswith("reward") else "policy"
        peak = peaks[("bf16" if mode == "bf16" else "fp32", model)]
        print(f"{what:34s} {mode:9s} {achieved / 1e9:7.1f} GF {peak / 1e9:8.1f} GF {achieved / peak:10.0%}   {note}")
        result[f"{key}_precision"] = mode
        result[f"{key}_achieved_gflops"] = round(achieved / 1e9, 1)
        result[f"{key}_attainable_gflops"] = round(peak / 1e9, 1)
        result[f"{key}_utilization"] = round(achieved / peak, 3)
        if note:
            result[f"{key}_notes"] = note
    save(args.out, result)


if __name__ == "__main__":
    main()
