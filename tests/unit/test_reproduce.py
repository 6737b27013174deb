"""`reproduce --verify` checks the files themselves: a tampered output, a changed evaluation, a `dvc status` that
fails or finds changes, and a version without recorded hashes each fail verification; a recomputation on another
kind of machine is held against the version's intervals."""

from __future__ import annotations

import json
import subprocess

import pytest

from alignflow.reproduce import ReproduceError, dvc_md5, verification, within_intervals


def sh(*command: str, cwd) -> str:
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def tree(tmp_path):
    """A DVC project with one tracked folder, as a restored version's work tree holds it, and the version's tags."""
    sh("git", "init", "-q", cwd=tmp_path)
    sh("dvc", "init", "-q", cwd=tmp_path)
    (tmp_path / "models/policy").mkdir(parents=True)
    (tmp_path / "models/policy/model.bin").write_bytes(b"weights")
    (tmp_path / "models/policy/config.json").write_text("{}")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval.json").write_text(json.dumps({"win_rate_policy_vs_sft": 0.8125}))
    sh("dvc", "add", "-q", "models/policy", cwd=tmp_path)
    digest = (tmp_path / "models/policy.dvc").read_text().split("md5: ")[1].split()[0]
    tags = {"lineage.dvc.models/policy": digest, "eval.win_rate_policy_vs_sft": "0.8125"}
    return tmp_path, tags


def failed(checks):
    return [what for what, recorded, found in checks if recorded != found]


def test_our_hash_of_a_folder_is_dvcs(tree):
    path, tags = tree
    assert dvc_md5(path / "models/policy") == tags["lineage.dvc.models/policy"]
    assert dvc_md5(path / "nowhere") == "missing"


def test_an_untouched_tree_verifies(tree):
    path, tags = tree
    assert failed(verification(path, tags, "v1")) == []


def test_a_tampered_output_is_a_mismatch_and_so_is_what_dvc_status_sees(tree):
    path, tags = tree
    (path / "models/policy/model.bin").write_bytes(b"weights, retouched")
    checks = verification(path, tags, "v1")
    assert failed(checks) == ["models/policy", "dvc status"]


def test_a_changed_evaluation_is_a_mismatch(tree):
    path, tags = tree
    (path / "metrics/eval.json").write_text(json.dumps({"win_rate_policy_vs_sft": 0.5}))
    ((_, _, found),) = [c for c in verification(path, tags, "v1") if c[0] == "metrics/eval.json"]
    assert found == "differs in win_rate_policy_vs_sft"


def test_a_version_without_recorded_hashes_cannot_verify(tree):
    path, tags = tree
    with pytest.raises(ReproduceError, match="v1: no lineage.dvc.\\* tags"):
        verification(path, {"eval.win_rate_policy_vs_sft": "0.8"}, "v1")


def test_a_dvc_status_that_fails_fails_the_verification(tree):
    path, tags = tree
    (path / "dvc.yaml").write_text("stages: [not, a, mapping]\n")
    with pytest.raises(ReproduceError, match="dvc status"):
        verification(path, tags, "v1")


def test_recomputed_metrics_on_another_machine_kind_are_checked_against_the_recorded_intervals(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval.json").write_text(json.dumps({"win_rate_policy_vs_sft": 0.74, "lc_win_rate": 0.51}))
    tags = {
        "eval.win_rate_policy_vs_sft": "0.79",
        "eval.win_rate_policy_vs_sft_ci_low": "0.73",
        "eval.win_rate_policy_vs_sft_ci_high": "0.85",
        "eval.lc_win_rate_ci_low": "0.55",
        "eval.lc_win_rate_ci_high": "0.70",
        "eval.judge_win_rate_ci_low": "0.6",
        "eval.judge_win_rate_ci_high": "0.8",
    }
    checks = {what: (recorded, found) for what, recorded, found in within_intervals(tmp_path, tags)}
    assert checks == {
        "win_rate_policy_vs_sft": ("[0.7300, 0.8500]", "[0.7300, 0.8500]"),  # inside: a match
        "lc_win_rate": ("[0.5500, 0.7000]", "0.5100"),
        "judge_win_rate": ("[0.6000, 0.8000]", "missing"),
    }
    with pytest.raises(ReproduceError, match="no evaluation intervals"):
        within_intervals(tmp_path, {"eval.win_rate_policy_vs_sft": "0.79"})
