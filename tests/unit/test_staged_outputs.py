"""All-or-nothing stage outputs: a failing block changes nothing; a kill between the two renames is recovered."""

from __future__ import annotations

import pytest

from alignflow.io import recover_output, staged_outputs


def test_outputs_move_into_place_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("previous")
    with pytest.raises(RuntimeError), staged_outputs(target) as (out,):
        (out / "weights").write_text("half")
        raise RuntimeError("training crashed")
    assert (target / "weights").read_text() == "previous"
    with staged_outputs(target) as (out,):
        (out / "weights").write_text("new")
    assert (target / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_kill_between_the_two_renames_leaves_the_previous_output_recoverable(tmp_path):
    target = tmp_path / "model"
    aside = tmp_path / ".model.old"  # where the previous output waits while the new one is renamed in
    aside.mkdir()
    (aside / "weights").write_text("previous")
    scratch = tmp_path / ".model.abc123.tmp"  # a killed run's scratch folder
    scratch.mkdir()
    recover_output(target)
    assert (target / "weights").read_text() == "previous" and not aside.exists()
    with staged_outputs(target) as (out,):
        (out / "weights").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
