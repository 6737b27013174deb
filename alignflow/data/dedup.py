"""Exact and semantic deduplication without ever building the n x n similarity matrix.

Semantics (same as the dense greedy approach): records are visited in order; a record is removed when
its cosine similarity to an earlier *kept* record is >= threshold; otherwise it is kept. Rows are
processed in blocks against the kept rows only, so memory is O(n*d + block^2) and the result is exact
and deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Duplicate:
    removed: int
    kept: int
    similarity: float


def normalise_text(text: str) -> str:
    """Case, punctuation and whitespace differences do not make two texts different."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", "", text)
    return " ".join(text.split())


def exact_duplicates(texts: Sequence[str]) -> list[Duplicate]:
    first: dict[str, int] = {}
    found = []
    for index, text in enumerate(texts):
        key = normalise_text(text)
        if key in first:
            found.append(Duplicate(index, first[key], 1.0))
        else:
            first[key] = index
    return found


def _best_match(
    rows: np.ndarray, reference: np.ndarray, candidates: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the highest similarity to reference[candidates] and which candidate gave it."""
    best = np.full(len(rows), -np.inf, dtype=np.float32)
    which = np.full(len(rows), -1, dtype=np.int64)
    for start in range(0, len(candidates), chunk):
        columns = candidates[start : start + chunk]
        sims = rows @ reference[columns].T
        arg = sims.argmax(axis=1)
        value = sims[np.arange(len(rows)), arg]
        better = value > best
        best[better], which[better] = value[better], columns[arg[better]]
    return best, which


def select_near_duplicates(
    embeddings: np.ndarray, threshold: float, block_size: int = 2048, progress: Callable[[int], None] | None = None
) -> tuple[list[Duplicate], np.ndarray]:
    """Greedy keep-first semantic dedup over L2-normalised rows.

    Returns the removed rows (each with the most similar earlier kept row) and, for every row, its
    highest similarity to an earlier kept row (-inf for the first), for histograms.
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    kept = np.zeros(n, dtype=bool)
    nearest_similarity = np.full(n, -np.inf, dtype=np.float32)
    nearest = np.full(n, -1, dtype=np.int64)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        block = embeddings[start:stop]
        best, which = _best_match(block, embeddings, np.flatnonzero(kept[:start]), block_size)
        inner = block @ block.T
        for row in range(stop - start):
            if best[row] >= threshold:
                continue
            kept[start + row] = True
            later = inner[row, row + 1 :]
            better = later > best[row + 1 :]
            best[row + 1 :][better] = later[better]
            which[row + 1 :][better] = start + row
        nearest_similarity[start:stop], nearest[start:stop] = best, which
        if progress:
            progress(stop - start)
    removed = [Duplicate(int(i), int(nearest[i]), float(nearest_similarity[i])) for i in np.flatnonzero(~kept)]
    return removed, nearest_similarity


def select_contaminated(
    embeddings: np.ndarray, reference: np.ndarray, threshold: float, block_size: int = 2048
) -> list[Duplicate]:
    """Rows whose similarity to any reference row (e.g. a held-out eval prompt) is >= threshold."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    found = []
    for start in range(0, len(embeddings), block_size):
        best, which = _best_match(
            embeddings[start : start + block_size], reference, np.arange(len(reference)), block_size
        )
        found += [Duplicate(start + int(i), int(which[i]), float(best[i])) for i in np.flatnonzero(best >= threshold)]
    return found


def deduplicate(
    texts: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    threshold: float,
    exact: bool = True,
    block_size: int = 2048,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Duplicate], np.ndarray]:
    """Exact pass (cheap, no embeddings) then semantic pass on what is left; indices refer to `texts`."""
    removed = exact_duplicates(texts) if exact else []
    if progress and removed:
        progress(len(removed))
    gone = {d.removed for d in removed}
    survivors = np.array([i for i in range(len(texts)) if i not in gone], dtype=np.int64)
    similarity = np.full(len(texts), 1.0, dtype=np.float32)
    if len(survivors):
        semantic, nearest = select_near_duplicates(
            embed([texts[i] for i in survivors]), threshold, block_size, progress
        )
        removed += [Duplicate(int(survivors[d.removed]), int(survivors[d.kept]), d.similarity) for d in semantic]
        similarity[survivors] = nearest
    return sorted(removed, key=lambda d: d.removed), similarity


def remove_records(
    dataset: str, rows: list[dict], found: Sequence[Duplicate], reference: list[dict], reason: str
) -> tuple[list[dict], list[dict]]:
    """(rows without the duplicates found, one report row per removal naming the record it duplicates in
    `reference`: the same rows for duplicates, the eval prompts for contamination)."""
    report = [
        {
            "dataset": dataset,
            "removed_id": rows[d.removed]["id"],
            "kept_id": reference[d.kept]["id"],
            "similarity": round(d.similarity, 4),
            "reason": reason,
        }
        for d in found
    ]
    return [rows[i] for i in kept_indices(len(rows), found)], report


def kept_indices(count: int, removed: Iterable[Duplicate]) -> list[int]:
    gone = {d.removed for d in removed}
    return [i for i in range(count) if i not in gone]
