"""Inputs handed to Ray workers: packed in the stage process, unpacked in a worker's private folder."""

from __future__ import annotations

import os

from alignflow.scale.worker import pack, unpack


def test_a_symlinked_input_arrives_as_the_files_it_points_to(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sft").mkdir(parents=True)
    (elsewhere / "sft" / "data.arrow").write_bytes(b"rows")
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    os.symlink(elsewhere / "sft", project / "data" / "sft")  # absolute link, as a DVC symlink cache makes
    (project / "models").mkdir()
    os.symlink(elsewhere / "sft" / "data.arrow", project / "models" / "weights.bin")
    monkeypatch.chdir(project)
    worker = tmp_path / "worker"
    for name in ("data/sft", "models/weights.bin"):
        unpack(pack(type(project)(name)), worker)
    assert (worker / "data" / "sft" / "data.arrow").read_bytes() == b"rows"
    assert (worker / "models" / "weights.bin").read_bytes() == b"rows"
    assert not (worker / "data" / "sft").is_symlink() and not (worker / "models" / "weights.bin").is_symlink()
