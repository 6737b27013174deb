"""Benchmark: SFT throughput with packed rows (ours) vs dynamic padding vs padding every example to max_length.

Run: `python bench/sft_padding.py [--data skewed|default] [--steps 20] [--repeats 3] [--out FILE.json]`.
- `skewed` (offline, nothing needed): a small Llama (hidden 256, 4 layers, vocab 2048, built in-process), fully
  fine-tuned on length-skewed examples (`--long-fraction` of them long), as chat data with a few long conversations
  looks. Compares pad-to-max, dynamic padding and packing.
- `default`: the default profile's SFT as the stage runs it: models/base with params.yaml's LoRA, the tokenized
  data/tokenized/sft in order, sft.batch_size, the precision `auto` picks here. Needs the pipeline's tokenize
  stage (`dvc repro tokenize`). Compares dynamic padding and packing.

Each method trains a fresh copy of the same model with the HF Trainer and our `training_arguments` on the same
batches in the same order; the collator is the only difference: `DataCollatorForSeq2Seq(padding="max_length")`,
`sft_collator` (pads each batch to its longest example) or `PackedCollator` (the batch's examples share rows as long
as its longest, attending only to themselves). One warm-up step, then `--steps` timed steps; runs alternate
`--repeats` times and the table shows medians. Real tokens are the examples' own tokens. Peak memory is the RSS
high-water mark during a run above the RSS at its start (Linux). The last lines print the ratios and how far the
per-step training losses of packing and padding are apart (they see the same tokens, so only rounding differs);
`--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transformers import DataCollatorForSeq2Seq  # noqa: E402

from alignflow.config import MarkerParams, SFTParams  # noqa: E402
from alignflow.data.formatting import IGNORE_INDEX, ChatFormat, tokenize_with_labels  # noqa: E402
from alignflow.models.tiny import build_tiny_causal_lm  # noqa: E402
from alignflow.timing import cpu_model, machine  # noqa: E402
from alignflow.training.common import training_arguments  # noqa: E402
from alignflow.training.packing import PackedCollator  # noqa: E402
from alignflow.training.sft import sft_collator  # noqa: E402
from bench.record import save  # noqa: E402

MAX_LEN = 512
BATCH_SIZE = 8
SHORT_LENGTHS = (20, 80)
LONG_LENGTHS = (200, MAX_LEN)
LONG_FRACTION = 0.1


def load_conversations() -> list[list[dict[str, str]]]:
    lines = (ROOT / "data" / "samples" / "sft.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["messages"] for line in lines if line.strip()]


def make_examples(conversations, tokenizer, count: int, long_fraction: float, seed: int = 0) -> list[dict]:
    """`count` examples, `long_fraction` of them long: input_ids + labels (-100 outside assistant replies), shuffled.

    Short: a conversation up to its first reply, cut to a length drawn from SHORT_LENGTHS (always keeping reply tokens).
    Long: several conversations joined into one, cut to a length drawn from LONG_LENGTHS.
    """
    rng = random.Random(seed)
    chat = ChatFormat("chat", MarkerParams())
    n_long = round(count * long_fraction)
    examples = []
    while len(examples) < count:
        long = len(examples) < n_long
        if long:
            messages = [m for conversation in rng.sample(conversations, 4) for m in conversation]
        else:
            conversation = rng.choice(conversations)
            messages = conversation[: next(i for i, m in enumerate(conversation) if m["role"] == "assistant") + 1]
        text, spans = chat.render(tokenizer, messages)
        encoded = tokenize_with_labels(tokenizer, text, spans, max_length=10**9)
        first_label = next(i for i, label in enumerate(encoded["labels"]) if label != IGNORE_INDEX)
        low, high = LONG_LENGTHS if long else SHORT_LENGTHS
        if first_label + 5 > high or len(encoded["input_ids"]) < low:
            continue
        length = min(rng.randint(max(low, first_label + 5), high), len(encoded["input_ids"]))
        examples.append({"input_ids": encoded["input_ids"][:length], "labels": encoded["labels"][:length]})
    rng.shuffle(examples)
    return examples


def counting(collator, batches: list[tuple[int, int]]):
    """Wrap a collator to record (real tokens, tokens computed on) of every batch it builds."""

    def collate(features):
        batch = collator(features)
        batches.append((sum(len(feature["input_ids"]) for feature in features), batch["input_ids"].numel()))
        return batch

    return collate


def memory_kb(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    lines = status.read_text().splitlines()
    return next((int(line.split()[1]) for line in lines if line.startswith(field + ":")), None)


def reset_peak_memory() -> None:
    """Return freed heap to the OS and reset the RSS high-water mark, so each run's peak is its own (Linux)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def collator_for(method: str, tokenizer, max_length: int):
    if method == "packed":
        return PackedCollator(tokenizer.pad_token_id)
    if method == "dynamic":
        return sft_collator(tokenizer)
    return DataCollatorForSeq2Seq(
        tokenizer, padding="max_length", max_length=max_length, label_pad_token_id=IGNORE_INDEX
    )


def train_once(method: str, workload: Workload, steps: int) -> dict:
    """Fine-tune a fresh copy of the workload's model for 1 warm-up + `steps` steps; time the `steps` steps."""
    from transformers import ProgressCallback, Trainer, TrainerCallback

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            control.should_save = False  # no checkpoints in a benchmark

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    batches: list[tuple[int, int]] = []
    ends: list[float] = []
    losses: list[float] = []
    output_dir = Path(tempfile.mkdtemp(prefix="sft_padding_"))
    params = replace(workload.params, max_steps=steps + 1, logging_steps=1, save_steps=10**6, eval_steps=10**6)
    trainer = Trainer(
        model=workload.model(),
        args=training_arguments(params, output_dir, seed=0, has_eval=False),
        train_dataset=workload.examples,
        data_collator=counting(collator_for(method, workload.tokenizer, workload.max_length), batches),
        callbacks=[StepClock()],
    )
    trainer.remove_callback(ProgressCallback)  # no progress bar or log lines in the benchmark's output
    reset_peak_memory()
    rss_start = memory_kb("VmRSS")
    trainer.train()
    peak = memory_kb("VmHWM")
    shutil.rmtree(output_dir, ignore_errors=True)
    timed = batches[1 : steps + 1]  # batch 0 is the warm-up step
    return {
        "steps": len(timed),
        "real": sum(b[0] for b in timed),
        "computed": sum(b[1] for b in timed),
        "seconds": ends[steps] - ends[0],
        "peak_mib": (peak - rss_start) / 1024 if peak and rss_start else None,
        "losses": losses,
        "order": [real for real, _ in batches[: steps + 1]],
    }


@dataclass
class Workload:
    description: str
    model: Callable[[], Any]
    """A fresh copy of the model to train."""
    tokenizer: Any
    examples: list[dict]
    params: SFTParams
    max_length: int
    methods: tuple[str, ...]


def skewed_workload(steps: int, long_fraction: float) -> Workload:
    conversations = load_conversations()
    corpus = [message["content"] for conversation in conversations for message in conversation]
    model, tokenizer = build_tiny_causal_lm(corpus, seed=0, vocab_size=2048, hidden_size=256, layers=4)
    examples = make_examples(conversations, tokenizer, (steps + 1) * BATCH_SIZE, long_fraction)
    n_long = sum(len(e["input_ids"]) >= LONG_LENGTHS[0] for e in examples)
    params = SFTParams(tuning="full", batch_size=BATCH_SIZE, learning_rate=1e-3, mixed_precision="no")
    description = (
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M-parameter Llama, full fine-tune, fp32; "
        f"{len(examples)} length-skewed examples ({n_long} long)"
    )
    methods = ("pad-to-max", "dynamic", "packed")
    return Workload(description, lambda: copy.deepcopy(model), tokenizer, examples, params, MAX_LEN, methods)


def default_workload(steps: int) -> Workload:
    """The default profile's SFT stage: its base model, adapter, data order, batch size and precision."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer, set_seed

    from alignflow.config import load_params
    from alignflow.precision import mixed_precision
    from alignflow.training.sft import build_sft_model

    loaded = load_params(ROOT / "params.yaml")
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "data/tokenized/tokenizer")
    data = load_from_disk(str(ROOT / "data/tokenized/sft"))["train"]
    examples = [{k: data[i][k] for k in ("input_ids", "labels")} for i in range((steps + 1) * loaded.sft.batch_size)]

    def model():
        set_seed(0)
        return build_sft_model(ROOT / "models/base", tokenizer, loaded.sft)

    mode = mixed_precision("sft.mixed_precision", loaded.sft.mixed_precision)
    description = f"the default SFT: models/base + LoRA r={loaded.sft.lora.r}, {mode}; data/tokenized/sft in order"
    methods = ("dynamic", "packed")
    return Workload(description, model, tokenizer, examples, loaded.sft, loaded.tokenize.max_length, methods)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=("skewed", "default"), default="skewed")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per run (after 1 warm-up step)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-fraction", type=float, default=LONG_FRACTION, help="skewed: share of long examples")
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    workload = (
        skewed_workload(args.steps, args.long_fraction) if args.data == "skewed" else default_workload(args.steps)
    )
    lengths = sorted(len(e["input_ids"]) for e in workload.examples)
    print(
        f"{workload.description}; lengths min {lengths[0]} / median {statistics.median(lengths):.0f} / max "
        f"{lengths[-1]}; batch {workload.params.batch_size}; CPU: {cpu_model()}",
        flush=True,
    )

    runs: dict[str, list[dict]] = {method: [] for method in workload.methods}
    for repeat in range(args.repeats):
        for method in runs:
            result = train_once(method, workload, args.steps)
            runs[method].append(result)
            print(f"  run {repeat + 1}/{args.repeats} {method:<11}{result['seconds']:7.2f} s", flush=True)
    orders = {tuple(r["order"]) for results in runs.values() for r in results}
    assert len(orders) == 1, "the runs saw different batches"

    print(
        f"\n{'method':<12}{'steps':>6}{'real tokens':>13}{'computed on':>13}{'seconds':>9}{'real tokens/s':>15}"
        f"{'peak MiB':>10}"
    )
    throughput = {}
    record = {
        "machine": machine(),
        "data": args.data,
        "workload": workload.description,
        "steps": args.steps,
        "repeats": args.repeats,
        "batch_size": workload.params.batch_size,
        **({"long_fraction": args.long_fraction} if args.data == "skewed" else {}),
        "length_min": lengths[0],
        "length_median": round(statistics.median(lengths)),
        "length_max": lengths[-1],
    }
    for method, results in runs.items():
        first = results[0]
        seconds = statistics.median(r["seconds"] for r in results)
        peaks = [r["peak_mib"] for r in results if r["peak_mib"] is not None]
        throughput[method] = first["real"] / seconds
        print(
            f"{method:<12}{first['steps']:>6}{first['real']:>13}{first['computed']:>13}{seconds:>9.2f}"
            f"{throughput[method]:>15.0f}{(f'{statistics.median(peaks):.0f}' if peaks else 'n/a'):>10}"
        )
        key = method.replace("-", "_")
        record[f"{key}_real_tokens"] = first["real"]
        record[f"{key}_computed_tokens"] = first["computed"]
        record[f"{key}_seconds"] = round(seconds, 2)
        record[f"{key}_real_tokens_per_second"] = round(throughput[method])
        record[f"{key}_peak_mib"] = round(statistics.median(peaks)) if peaks else None
    packed, dynamic = runs["packed"][0]["losses"], runs["dynamic"][0]["losses"]
    gap = max(abs(a - b) / abs(b) for a, b in zip(packed, dynamic, strict=True))
    print(f"\nper-step training loss, packed vs dynamic padding: {len(packed)} steps, largest relative gap {gap:.1e}")
    record["loss_steps_compared"] = len(packed)
    record["packed_vs_dynamic_largest_relative_loss_gap"] = float(f"{gap:.2e}")
    if "pad-to-max" in throughput:
        print(f"dynamic padding vs pad-to-max: {throughput['dynamic'] / throughput['pad-to-max']:.2f}x tokens/s")
        record["dynamic_vs_pad_to_max_speedup"] = round(throughput["dynamic"] / throughput["pad-to-max"], 2)
    print(f"packed vs dynamic padding: {throughput['packed'] / throughput['dynamic']:.2f}x tokens/s (target >= 1.5x)")
    record["packed_vs_dynamic_speedup"] = round(throughput["packed"] / throughput["dynamic"], 2)
    save(args.out, record)


if __name__ == "__main__":
    main()
