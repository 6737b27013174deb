"""The DVC cache policy a scheduled checkout applies after its push: `workspace` keeps exactly what the work tree
uses, `none` keeps every version. Real DVC in a throwaway git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from alignflow.remote import collect_garbage


def cached_objects(repo: Path) -> int:
    return sum(1 for f in (repo / ".dvc/cache").rglob("*") if f.is_file())


@pytest.mark.parametrize(("policy", "kept"), [("none", 3), ("workspace", 1)])
def test_the_policy_bounds_the_cache_to_what_it_promises(tmp_path, monkeypatch, policy, kept):
    monkeypatch.chdir(tmp_path)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, check=True)
    for day in range(3):  # three runs, each writing a new model
        Path("model.bin").write_text(f"weights of run {day}")
        subprocess.run(["dvc", "add", "-q", "model.bin"], check=True)
    assert cached_objects(tmp_path) == 3
    collect_garbage(policy)
    assert cached_objects(tmp_path) == kept
    assert Path("model.bin").read_text() == "weights of run 2"
