"""Figures logged to MLflow and written as DVC plots (matplotlib, headless)."""
from __future__ import annotations

import numpy as np


def similarity_histogram(similarities: np.ndarray, threshold: float):
    """Each record's highest similarity to an earlier kept record, with the dedup threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.hist(similarities, bins=50, range=(-0.2, 1.0), color="#4c72b0")
    axis.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold}")
    axis.set_xlabel("cosine similarity to nearest earlier kept record")
    axis.set_ylabel("records")
    axis.legend()
    figure.tight_layout()
    return figure
