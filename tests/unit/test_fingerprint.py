"""The evaluation fingerprint: stable for the same evaluation, and naming each part that changed."""

from pathlib import Path

from alignflow.evaluation.fingerprint import as_tags, differing_parts, evaluation_fingerprint, from_tags


def fingerprint(tmp_path: Path, prompts=((1, [5, 6]),), keys=(1000,), decoding=None, scorer=b"weights"):
    ifeval = tmp_path / "ifeval.jsonl"
    ifeval.write_text('{"key": 1000}\n')
    scorer_dir = tmp_path / "reward"
    scorer_dir.mkdir(exist_ok=True)
    (scorer_dir / "model.safetensors").write_bytes(scorer)
    return evaluation_fingerprint(
        [{"id": i, "input_ids": ids} for i, ids in prompts],
        keys,
        ifeval,
        decoding or {"max_new_tokens": 128},
        "lm-eval 0.4.13",
        "{{ messages }}",
        {"reward": scorer_dir},
    )


def test_the_same_evaluation_has_the_same_fingerprint_and_round_trips_through_tags(tmp_path):
    first = fingerprint(tmp_path)
    assert first == fingerprint(tmp_path)
    assert from_tags({**as_tags(first), "eval.x": "1"}) == first
    assert differing_parts(first, fingerprint(tmp_path)) == []


def test_each_changed_part_is_named(tmp_path):
    base = fingerprint(tmp_path)
    assert differing_parts(base, fingerprint(tmp_path, prompts=((1, [5, 7]),))) == ["eval_prompts"]
    assert differing_parts(base, fingerprint(tmp_path, keys=(1001,))) == ["ifeval"]
    assert differing_parts(base, fingerprint(tmp_path, decoding={"max_new_tokens": 64})) == ["decoding"]
    assert differing_parts(base, fingerprint(tmp_path, scorer=b"retrained")) == ["scorers"]
    assert differing_parts(base, {}) == ["chat_template", "checker", "decoding", "eval_prompts", "ifeval", "scorers"]
