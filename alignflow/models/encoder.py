"""Sentence encoder with a per-text cache, so dedup and decontamination embed each text once.

sentence_transformers is imported when an encoder is created, so that importing this module stays fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alignflow.errors import first_line
from alignflow.models.loading import ModelLoadError, remote_code_trusted


class CachedEncoder:
    """Callable: list of texts -> L2-normalised float32 embeddings (n x d)."""

    def __init__(self, model_dir: Path | str, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=remote_code_trusted())
        except Exception as exc:  # one line naming the folder, as for every model load
            raise ModelLoadError(f"{model_dir}: cannot load the sentence encoder ({first_line(exc)})") from exc
        self.batch_size = batch_size
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            vectors = self.model.encode(
                missing,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=len(missing) > self.batch_size,
            )
            self.cache.update(zip(missing, vectors.astype(np.float32)))
        dim = self.model.get_embedding_dimension()
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, dim), dtype=np.float32)
