"""Benchmark: SFT throughput with dynamic padding (ours) vs padding every example to max_length.

Run: `python bench/sft_padding.py [--steps 20] [--repeats 3] [--long-fraction 0.1]`. A small Llama (hidden 256,
4 layers, vocab 2048, built in-process, offline) is fully fine-tuned with the HF Trainer and our
`training_arguments`, once per collator, on the same length-skewed examples in the same order: ours
(`sft_collator`, pads each batch to its longest example) and the old way (`DataCollatorForSeq2Seq(padding=
"max_length")`). The collator is the only difference. One warm-up step, then `--steps` timed steps; runs
alternate A/B `--repeats` times and the table shows medians. Real tokens are non-pad tokens. Peak memory is the
RSS high-water mark during a run above the RSS at its start (Linux). The last line prints the ratio.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alignflow.config import MarkerParams, SFTParams  # noqa: E402
from alignflow.data.formatting import IGNORE_INDEX, ChatFormat, tokenize_with_labels  # noqa: E402
from alignflow.models.tiny import build_tiny_causal_lm  # noqa: E402
from alignflow.training.common import training_arguments  # noqa: E402
from alignflow.training.sft import sft_collator  # noqa: E402

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
    """Wrap a collator to record (real tokens, padded tokens) of every batch it builds."""

    def collate(features):
        batch = collator(features)
        batches.append((int(batch["attention_mask"].sum()), batch["input_ids"].numel()))
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


def train_once(method: str, initial_model, tokenizer, examples, steps: int) -> dict:
    """Fine-tune a fresh copy of the model for 1 warm-up + `steps` steps; time the `steps` steps."""
    from transformers import DataCollatorForSeq2Seq, ProgressCallback, Trainer, TrainerCallback

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            control.should_save = False  # no checkpoints in a benchmark

    collator = (
        sft_collator(tokenizer)
        if method == "dynamic"
        else DataCollatorForSeq2Seq(tokenizer, padding="max_length", max_length=MAX_LEN, label_pad_token_id=-100)
    )
    batches: list[tuple[int, int]] = []
    ends: list[float] = []
    output_dir = Path(tempfile.mkdtemp(prefix="sft_padding_"))
    params = SFTParams(
        method="full",
        max_steps=steps + 1,
        batch_size=BATCH_SIZE,
        learning_rate=1e-3,
        logging_steps=steps + 1,
        save_steps=10**6,
        mixed_precision="no",
    )
    model = copy.deepcopy(initial_model)
    trainer = Trainer(
        model=model,
        args=training_arguments(params, output_dir, seed=0, has_eval=False),
        train_dataset=examples,
        data_collator=counting(collator, batches),
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
        "padded": sum(b[1] for b in timed),
        "seconds": ends[steps] - ends[0],
        "peak_mib": (peak - rss_start) / 1024 if peak and rss_start else None,
        "order": batches[: steps + 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per run (after 1 warm-up step)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-fraction", type=float, default=LONG_FRACTION, help="share of long examples")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    conversations = load_conversations()
    corpus = [message["content"] for conversation in conversations for message in conversation]
    model, tokenizer = build_tiny_causal_lm(corpus, seed=0, vocab_size=2048, hidden_size=256, layers=4)
    examples = make_examples(conversations, tokenizer, (args.steps + 1) * BATCH_SIZE, args.long_fraction)
    lengths = sorted(len(e["input_ids"]) for e in examples)
    n_long = sum(length >= LONG_LENGTHS[0] for length in lengths)
    print(
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M-parameter Llama; {len(examples)} examples "
        f"({n_long} long), lengths min {lengths[0]} / median {statistics.median(lengths):.0f} / max {lengths[-1]}; "
        f"batch {BATCH_SIZE}, max_length {MAX_LEN}",
        flush=True,
    )

    runs: dict[str, list[dict]] = {"pad-to-max": [], "dynamic": []}
    for repeat in range(args.repeats):
        for method in runs:
            result = train_once(method, model, tokenizer, examples, args.steps)
            runs[method].append(result)
            print(f"  run {repeat + 1}/{args.repeats} {method:<11}{result['seconds']:7.2f} s", flush=True)
    orders = {tuple(real for real, _ in r["order"]) for results in runs.values() for r in results}
    assert len(orders) == 1, "the runs saw different batches"

    print(
        f"\n{'method':<12}{'steps':>6}{'real tokens':>13}{'padded tokens':>15}{'seconds':>9}{'real tokens/s':>15}"
        f"{'peak MiB':>10}"
    )
    throughput = {}
    for method, results in runs.items():
        first = results[0]
        seconds = statistics.median(r["seconds"] for r in results)
        peaks = [r["peak_mib"] for r in results if r["peak_mib"] is not None]
        throughput[method] = first["real"] / seconds
        print(
            f"{method:<12}{first['steps']:>6}{first['real']:>13}{first['padded']:>15}{seconds:>9.2f}"
            f"{throughput[method]:>15.0f}{(f'{statistics.median(peaks):.0f}' if peaks else 'n/a'):>10}"
        )
    ratio = throughput["dynamic"] / throughput["pad-to-max"]
    print(f"\ndynamic padding vs pad-to-max: {ratio:.2f}x tokens/s (target >= 2x)")


if __name__ == "__main__":
    main()
