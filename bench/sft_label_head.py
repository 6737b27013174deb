"""Benchmark: an SFT training step with the LM head on every position (transformers' own loss) vs only on the
positions that predict a label (`alignflow.training.label_loss`, what the sft stage runs).

Run from a project whose tokenize and ingest stages have run (models/base, data/tokenized/sft):
`python bench/sft_label_head.py [--steps 8] [--repeats 3] [--out FILE.json]`.

The default profile's SFT model as the stage builds it (models/base with params.yaml's sft section: its LoRA, the
precision `auto` picks here) takes forward + backward + an AdamW step on the same packed batches of
data/tokenized/sft, in order, once per loss, after one untimed warm-up step of each; the two alternate
`--repeats` times and the table shows medians of the summed step times. The last lines print the ratio and how
far the two losses are apart (the same arithmetic on fewer positions: only rounding differs); `--out` saves the
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

from alignflow import paths  # noqa: E402
from alignflow.config import load_params  # noqa: E402
from alignflow.models.loading import load_pretrained  # noqa: E402
from alignflow.precision import mixed_precision  # noqa: E402
from alignflow.stages.common import load_arrow  # noqa: E402
from alignflow.timing import machine  # noqa: E402
from alignflow.training.label_loss import labelled_loss  # noqa: E402
from alignflow.training.packing import PackedCollator  # noqa: E402
from alignflow.training.sft import build_sft_model  # noqa: E402
from bench.record import save  # noqa: E402


def model_loss(model, batch):
    return model(**batch).loss


def timed_steps(model, batches, loss_of, precision: str) -> tuple[float, list[float]]:
    """Seconds for forward + backward + optimizer step over `batches`, and each step's loss."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    losses, started = [], time.perf_counter()
    for batch in batches:
        with autocast:
            loss = loss_of(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return time.perf_counter() - started, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    params = load_params()
    config = params.sft
    tokenizer = load_pretrained(AutoTokenizer, paths.TOKENIZED / "tokenizer")
    rows = load_arrow(paths.TOKENIZED / "sft", "tokenize")["train"].remove_columns("id").to_list()
    collate = PackedCollator(tokenizer.pad_token_id)
    batches = [
        collate(rows[i : i + config.batch_size]) for i in range(0, args.steps * config.batch_size, config.batch_size)
    ]
    labelled = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    positions = sum(b["labels"][:, 1:].numel() for b in batches)
    precision = mixed_precision("sft.mixed_precision", config.mixed_precision)
    base = build_sft_model(paths.BASE_MODEL, tokenizer, config)
    initial = {k: v.clone() for k, v in base.state_dict().items()}
    for loss_of in (model_loss, labelled_loss_only):  # warm-up: the first steps pay for allocations, not arithmetic
        timed_steps(base, batches[:1], loss_of, precision)
        base.load_state_dict(initial)
    seconds: dict[str, list[float]] = {"every position": [], "labelled positions": []}
    losses: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, loss_of in (("every position", model_loss), ("labelled positions", labelled_loss_only)):
            base.load_state_dict(initial)
            base.train()
            spent, losses[name] = timed_steps(base, batches, loss_of, precision)
            seconds[name].append(spent)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = medians["every position"] / medians["labelled positions"]
    gap = max(abs(a - b) for a, b in zip(losses["every position"], losses["labelled positions"]))
    print(
        f"{args.steps} steps of {config.batch_size} examples ({config.tuning}, {precision}); "
        f"{labelled} of {positions} positions predict a label ({labelled / positions:.0%})"
    )
    print(f"| loss computed at | seconds (median of {args.repeats}) |")
    print("|---|---|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    print(f"speed-up: {ratio:.2f}x; largest per-step loss difference: {gap:.2e}")
    save(
        args.out,
        {
            "machine": machine(),
            "steps": args.steps,
            "batch_size": config.batch_size,
            "tuning": config.tuning,
            "precision": precision,
            "labelled_share": round(labelled / positions, 4),
            "seconds": {name: round(value, 3) for name, value in medians.items()},
            "speedup": round(ratio, 3),
            "largest_loss_difference": gap,
        },
    )


def labelled_loss_only(model, batch):
    return labelled_loss(model, batch)[0]


if __name__ == "__main__":
    main()
