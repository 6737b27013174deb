"""Where stages look: checkpoints in step order, and the reward model's starting point."""

from __future__ import annotations

from alignflow import paths


def test_checkpoints_sort_by_step_number_and_skip_other_folders(tmp_path):
    for name in ("checkpoint-9", "checkpoint-10", "checkpoint-2", "tmp-checkpoint-11", "checkpoint-x"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-12").write_text("a file, not a checkpoint")
    assert [p.name for p in paths.checkpoints_by_step(tmp_path)] == ["checkpoint-2", "checkpoint-9", "checkpoint-10"]
    assert paths.checkpoints_by_step(tmp_path / "missing") == []


def test_reward_backbone_is_the_encoder_or_the_merged_sft_model():
    assert paths.reward_backbone("encoder") == (paths.ENCODER, paths.ENCODER)
    assert paths.reward_backbone("sft") == (paths.SFT_MODEL, paths.SFT_MODEL / "model")
