"""Where each stage reads and writes, relative to the project root (dvc.yaml repeats these; a test checks)."""

from pathlib import Path

RAW_DATA = Path("data/raw")
DEDUP_DATA = Path("data/dedup")
TOKENIZED = Path("data/tokenized")
BASE_MODEL = Path("models/base")
ENCODER = Path("models/encoder")
METRICS = Path("metrics")
PLOTS = Path("plots")


def raw_file(dataset: str) -> Path:
    return RAW_DATA / f"{dataset}.jsonl"


def dedup_file(dataset: str) -> Path:
    return DEDUP_DATA / f"{dataset}.jsonl"


def metrics_file(stage: str) -> Path:
    """metrics/<stage>.json; evaluate's is metrics/eval.json, the pipeline's headline numbers."""
    return METRICS / f"{'eval' if stage == 'evaluate' else stage}.json"


MACHINE = metrics_file("machine")
"""The arithmetic the training and evaluation stages ran with (the `machine` stage writes it; they depend on it)."""

SFT_MODEL = Path("models/sft")
REWARD_MODEL = Path("models/reward")
JUDGE_MODEL = Path("models/judge")
"""A second reward model trained on comparison groups the reward model never saw; evaluation only."""
POLICY = Path("models/policy")
KEPT_UPDATE = "kept_update.json"
"""Beside a PPO policy: which of its updates it is (`ppo.keep`); the registered version's lineage records it."""
BASELINE = Path("data/baseline.json")
"""SFT's side of the evaluation (samples, scores, best-of-n), reused while only the policy changes."""


def reward_backbone(backbone: str) -> tuple[Path, Path]:
    """(stage input, model folder holding its tokenizer) the reward model and the judge start from (`reward.backbone`):
    the sentence encoder, or the merged SFT model."""
    return (ENCODER, ENCODER) if backbone == "encoder" else (SFT_MODEL, SFT_MODEL / "model")


CHECKPOINTS = Path("checkpoints")
"""Resumable training state; not a DVC output (deleted once a stage finishes)."""


def checkpoints_by_step(directory: Path) -> list[Path]:
    """`checkpoint-<step>` folders, oldest first (by step number, not name: checkpoint-10 after checkpoint-9)."""
    found = [d for d in directory.glob("checkpoint-*") if d.is_dir() and d.name.removeprefix("checkpoint-").isdigit()]
    return sorted(found, key=lambda d: int(d.name.removeprefix("checkpoint-")))
