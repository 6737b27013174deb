"""Figures logged to MLflow and written as DVC plots (matplotlib, headless).

matplotlib is imported on the first figure drawn, so that the stages importing this module start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def similarity_histogram(similarities: np.ndarray, threshold: float) -> Figure:
    """Each record's highest similarity to an earlier kept record, with the dedup threshold marked."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.hist(similarities, bins=50, range=(-0.2, 1.0), color="#4c72b0")
    axis.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold}")
    axis.set_xlabel("cosine similarity to nearest earlier kept record")
    axis.set_ylabel("records")
    axis.legend()
    figure.tight_layout()
    return figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reward_histograms(sft_rewards, policy_rewards) -> Figure:
    """Reward-model scores of SFT vs policy responses on the held-out prompts, overlaid."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    low = min(min(sft_rewards), min(policy_rewards))
    high = max(max(sft_rewards), max(policy_rewards))
    bins = np.linspace(low, high, 20) if high > low else 10
    axis.hist(sft_rewards, bins=bins, alpha=0.6, label="SFT", color="#4c72b0")
    axis.hist(policy_rewards, bins=bins, alpha=0.6, label="policy", color="#dd8452")
    axis.set_xlabel("reward-model score")
    axis.set_ylabel("responses")
    axis.legend()
    figure.tight_layout()
    return figure


TRAINING_KEYS = (
    ("reward_mean", "kl", "entropy", "response_length"),  # ppo, per update
    ("loss", "rewards_margins", "rewards_accuracies", "rewards_chosen"),  # offline methods, per logged step
)
"""The panels of the training plot: the first set the history holds."""


def training_curves(history: list[dict[str, float]]) -> Figure:
    """The policy's training statistics, one panel per key (per PPO update, or per logged step of a TRL trainer)."""
    plt = _pyplot()
    keys = next((ks for ks in TRAINING_KEYS if any(ks[0] in h for h in history)), TRAINING_KEYS[0])
    figure, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3))
    steps = [h.get("step", index) for index, h in enumerate(history, start=1)]
    for axis, key in zip(np.atleast_1d(axes), keys):
        axis.plot(steps, [h.get(key, np.nan) for h in history], marker="o", markersize=3)
        axis.set_title(key)
        axis.set_xlabel("step" if "step" in (history[0] if history else {}) else "update")
    figure.tight_layout()
    return figure


CURVE_KEYS = {"curve_win_rate": "reward model", "curve_judge_win_rate": "judge"}
"""History keys PPO writes every ppo.curve_every updates: win rate vs SFT on the dev split (offline methods
sample nothing while training, so their plot holds only the starting point)."""


def alignment_curve(history: list[dict[str, float]]) -> Figure:
    """Win rate of the policy against SFT on the dev split over updates (0.5 at update 0: the same model)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for key, label in CURVE_KEYS.items():
        points = [(0, 0.5)] + [(update, h[key]) for update, h in enumerate(history, start=1) if key in h]
        axis.plot(*zip(*points), marker="o", label=label)
    axis.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("update")
    axis.set_ylabel("win rate vs SFT")
    axis.legend()
    figure.tight_layout()
    return figure
