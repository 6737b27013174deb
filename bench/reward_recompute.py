"""Benchmark: a reward-model training step with gradient checkpointing (TRL's RewardConfig default: activations
recomputed in backward) vs without (activations held, what the reward stage runs on the sentence encoder).

Run from a project whose ingest and tokenize stages have run (models/encoder, data/tokenized/reward):
`python bench/reward_recompute.py [--steps 6] [--repeats 3] [--out FILE.json]`.

The reward stage's model (params.yaml's reward section on its backbone) takes forward + backward + an AdamW step on
the same batches of the training pairs, collated by TRL's RewardTrainer as the stage collates them, once per
setting after an untimed warm-up step of each; the two alternate `--repeats` times and the table shows medians of
the summed step times. Memory is what the autograd graph holds for backward at its largest step (the bytes of the
tensors saved for it), which is what checkpointing trades for time. The last lines print the ratio and how far the
two settings' losses are apart (the same arithmetic: only rounding may differ); `--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from alignflow import paths  # noqa: E402
from alignflow.config import load_params  # noqa: E402
from alignflow.models.loading import load_pretrained  # noqa: E402
from alignflow.stages.common import load_arrow  # noqa: E402
from alignflow.timing import machine  # noqa: E402
from alignflow.training.common import training_arguments  # noqa: E402
from alignflow.training.reward import build_reward_model, with_margins  # noqa: E402
from bench.record import save  # noqa: E402


class SavedBytes:
    """The bytes of the tensors autograd saves for backward while the context is open (storage counted once)."""

    def __init__(self):
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def total(self) -> int:
        return sum(self.storages.values())


def timed_steps(trainer, model, batches, checkpointing: bool) -> tuple[float, list[float], int]:
    """Seconds for forward + backward + optimizer step over `batches`, each step's loss, and the largest step's
    bytes saved for backward."""
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.activation_checkpointing_disable()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses, peak, started = [], 0, time.perf_counter()
    for batch in batches:
        saved = SavedBytes()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda tensor: tensor):
            loss = trainer.compute_loss(model, batch)
        peak = max(peak, saved.total())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return time.perf_counter() - started, losses, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from transformers import AutoTokenizer, set_seed
    from trl import RewardConfig, RewardTrainer

    params = load_params()
    config = params.reward
    backbone = paths.reward_backbone(config.backbone)[1]
    tokenizer = load_pretrained(AutoTokenizer, backbone)
    pairs = with_margins(load_arrow(paths.TOKENIZED / "reward", "tokenize")["train"], config.margin_scale)
    set_seed(params.common.seed)
    model = build_reward_model(backbone, tokenizer)
    with tempfile.TemporaryDirectory() as scratch:
        seed = params.common.seed
        arguments = training_arguments(config, Path(scratch), seed, False, cls=RewardConfig, max_length=None)
        trainer = RewardTrainer(model=model, args=arguments, train_dataset=pairs, processing_class=tokenizer)
        loader = iter(trainer.get_train_dataloader())
        batches = [next(loader) for _ in range(args.steps)]
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    settings = {"recomputed (checkpointing)": True, "held": False}
    for checkpointing in settings.values():  # warm-up: the first steps pay for allocations, not arithmetic
        timed_steps(trainer, model, batches[:1], checkpointing)
        model.load_state_dict(initial)
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    losses: dict[str, list[float]] = {}
    saved: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, checkpointing in settings.items():
            model.load_state_dict(initial)
            spent, losses[name], saved[name] = timed_steps(trainer, model, batches, checkpointing)
            seconds[name].append(spent)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    recomputed, held = settings
    ratio = medians[recomputed] / medians[held]
    gap = max(abs(a - b) for a, b in zip(losses[recomputed], losses[held]))
    sequences = sum(len(batch["input_ids"]) for batch in batches)
    print(f"{args.steps} steps of {config.batch_size} pairs ({sequences} sequences) on {config.backbone}")
    print(f"| activations | seconds (median of {args.repeats}) | MiB saved for backward (largest step) |")
    print("|---|---|---|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} | {saved[name] / 2**20:.0f} |")
    print(f"speed-up: {ratio:.2f}x; largest per-step loss difference: {gap:.2e}")
    save(
        args.out,
        {
            "machine": machine(),
            "steps": args.steps,
            "batch_size": config.batch_size,
            "backbone": config.backbone,
            "seconds": {name: round(value, 3) for name, value in medians.items()},
            "saved_mib": {name: round(value / 2**20, 1) for name, value in saved.items()},
            "speedup": round(ratio, 3),
            "largest_loss_difference": gap,
        },
    )


if __name__ == "__main__":
    main()
