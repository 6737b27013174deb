"""Lineage: a run is dirty only when source or config differ from the commit, not because it rewrote its outputs."""

from __future__ import annotations

import subprocess

from alignflow.registry.lineage import git_state

PIPELINE = """metrics:
  - metrics/timing.json
stages:
  evaluate:
    cmd: python -m evaluate
    outs:
      - metrics/eval_samples.json
    metrics:
      - metrics/eval.json:
          cache: false
    plots:
      - plots
"""


def git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=cwd, check=True, capture_output=True
    )


def test_only_source_and_config_changes_make_a_run_dirty(tmp_path, monkeypatch):
    files = {"dvc.yaml": PIPELINE, "dvc.lock": "a", "metrics/eval.json": "{}", "plots/curve.png": "x", "src.py": "1"}
    files["metrics/timing.json"] = "{}"
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "init")
    monkeypatch.chdir(tmp_path)
    for name in ("dvc.lock", "metrics/eval.json", "metrics/timing.json", "plots/curve.png"):  # what a run rewrites
        (tmp_path / name).write_text("rewritten by the run")
    state = git_state()
    assert state["git_dirty"] == "false" and "git_changes" not in state and len(state["git_commit"]) == 40
    (tmp_path / "src.py").write_text("2")
    (tmp_path / "dvc.yaml").write_text(PIPELINE + "\n")
    assert git_state() == {**state, "git_dirty": "true", "git_changes": "dvc.yaml src.py"}
