"""End to end on the tiny profile with real DVC, Prefect and MLflow: `dvc repro` and the Prefect flow give identical
outputs and a registered model version; reruns skip; `dvc exp run -S ppo...` redoes only what depends on PPO; switching
`align.method` to an offline method reruns only the policy slot and what reads it, and registers that method."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from flows.pipeline import STAGES
from tests.project import changed_stages, copy_project, make_project, project_env, ran_stages, run

pytestmark = pytest.mark.slow
DATA_STAGES = ["ingest", "dedup", "tokenize"]


def locked_outputs(project, stages=DATA_STAGES) -> dict[str, str]:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for name in stages
        for out in lock["stages"][name]["outs"]
        if not out["path"].startswith("metrics/")
    }  # metrics carry wall times


def mlflow_runs(project):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments)


@pytest.fixture(scope="module")
def projects(tmp_path_factory, tiny_pipeline):
    """A fresh project for `dvc repro`, and a copy of the session's flow-built project (tests/conftest.py)."""
    by_dvc = make_project(tmp_path_factory.mktemp("by_dvc") / "project")
    return by_dvc, copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("by_prefect") / "project")


def test_dvc_repro_and_prefect_flow_agree_and_rerun_skips(projects, tiny_pipeline):
    by_dvc, by_prefect = projects
    run(["dvc", "repro"], by_dvc)
    assert ran_stages(tiny_pipeline.flow) == list(STAGES)

    assert locked_outputs(by_dvc, STAGES) == locked_outputs(by_prefect, STAGES)
    for project in projects:
        assert changed_stages(project) == set()
        assert json.loads((project / "metrics/dedup.json").read_text())["sft_kept"] > 0
        align = json.loads((project / "metrics/align.json").read_text())
        assert align["updates"] == 4 and 0 < align["curve_seconds"] < align["train_seconds"]
        assert (project / "models/policy/model.safetensors").is_file()

    timing = json.loads((by_prefect / "metrics/timing.json").read_text())
    assert set(timing["stage_minutes"]) == set(STAGES) and all(timing["ran"].values()) and timing["cpu"]
    assert set(timing["stage_peak_rss_gb"]) == set(STAGES) and timing["peak_rss_gb"] > 0.1
    again = run(["alignflow", "run"], by_prefect)
    assert "machine: ran" in again.stdout  # the probe always runs; its output is unchanged, so nothing else does
    assert [f"{name}: up to date" for name in STAGES if name != "machine"] == [
        entry for entry in again.stdout.splitlines() if entry.endswith("up to date")
    ]
    assert locked_outputs(by_prefect) == locked_outputs(by_dvc)


def test_flow_run_ends_with_a_registered_version_and_dvc_metrics(projects):
    import mlflow

    _, by_prefect = projects
    client = mlflow.MlflowClient(f"sqlite:///{by_prefect / 'mlflow.db'}")
    (version,) = client.search_model_versions("name='alignflow-policy'")
    assert version.tags["gate.staging.decision"] in ("promoted", "rejected")
    assert version.tags["lineage.dvc.models/policy"] == locked_outputs(by_prefect, ["align"])["models/policy"]
    register = json.loads((by_prefect / "metrics/register.json").read_text())
    assert register["version"] == 1
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], by_prefect).stdout)
    assert "win_rate_policy_vs_sft" in json.dumps(shown) and "eval_accuracy" in json.dumps(shown)
    evaluation = json.loads((by_prefect / "metrics/eval.json").read_text())
    assert evaluation["ifeval_prompts_policy"] == 6  # configs/tiny.yaml: a seeded subset of 6 IFEval prompts
    for name in ("policy", "sft", "base"):
        assert 0 <= evaluation[f"ifeval_prompt_strict_{name}"] <= evaluation[f"ifeval_prompt_loose_{name}"] <= 1
    assert evaluation["ifeval_diff_policy_sft_ci_low"] <= evaluation["ifeval_diff_policy_sft"]
    assert version.tags["eval.ifeval_prompt_strict_policy"] == str(evaluation["ifeval_prompt_strict_policy"])
    assert version.tags["fingerprint.digest"] == evaluation["fingerprint"]["digest"]
    run(["alignflow", "benchmark", "--version", "1", "--limit", "3", "--max-new-tokens", "8"], by_prefect)
    version = client.get_model_version("alignflow-policy", "1")
    assert version.tags["benchmark.ifeval_prompts"] == "3" and "benchmark.ifeval_prompt_strict" in version.tags
    scored = client.get_run(version.tags["benchmark.ifeval_run_id"])
    assert scored.data.tags["mlflow.parentRunId"] == version.run_id and scored.data.metrics["ifeval_prompts_model"] == 3
    report = json.loads((by_prefect / "reports/benchmark-ifeval-alignflow-policy-v1.json").read_text())
    assert len(report["answers"]) == 3 and report["settings"]["max_new_tokens"] == 8
    assert report["recipe"] == {"profile": "tiny", "method": "ppo"}  # the version's lineage names what made it
    listing = run(["alignflow", "registry"], by_prefect).stdout
    assert "ifeval_vs_sft" in listing.splitlines()[1] and "(3)" in listing.splitlines()[2]


def test_experiment_on_a_ppo_param_reruns_only_ppo_evaluate_register_and_a_tie_is_rejected(projects):
    by_dvc, _ = projects
    result = run(["dvc", "exp", "run", "-S", "ppo.learning_rate=0.0"], by_dvc)  # the policy stays the SFT model
    ran = [line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["machine", "align", "evaluate", "register"]
    assert "0.0" in run(["dvc", "exp", "show", "--no-pager", "--csv"], by_dvc).stdout
    evaluation = json.loads((by_dvc / "metrics/eval.json").read_text())
    assert evaluation["win_rate_policy_vs_sft"] == 0.5 and evaluation["win_rate_policy_vs_sft_ci_low"] == 0.5
    register = json.loads((by_dvc / "metrics/register.json").read_text())
    assert register["promoted"] is False and "win rate" in register["reason"]


def test_switching_to_dpo_reruns_only_the_policy_slot_and_registers_the_method(projects):
    import mlflow

    from alignflow.config import apply_overlay

    _, by_prefect = projects
    apply_overlay(by_prefect / "params.yaml", {"align": {"method": "dpo"}})
    assert changed_stages(by_prefect) == {"align", "register"}  # evaluate follows once models/policy changes
    flow = run(["alignflow", "run"], by_prefect)
    assert ran_stages(flow) == [
        "machine",
        "align",
        "evaluate",
        "register",
    ]
    metrics = json.loads((by_prefect / "metrics/align.json").read_text())
    assert metrics["steps"] > 0 and metrics["examples"] > 0 and "updates" not in metrics
    evaluation = json.loads((by_prefect / "metrics/eval.json").read_text())
    assert {"lc_win_rate_policy_vs_sft_ci_low", "judge_lc_win_rate_policy_vs_sft"} <= set(evaluation)
    client = mlflow.MlflowClient(f"sqlite:///{by_prefect / 'mlflow.db'}")
    dpo_version = client.get_model_version("alignflow-policy", "2")
    assert dpo_version.tags["lineage.method"] == "dpo" and "DPO (lora" in dpo_version.description
    assert client.get_model_version("alignflow-policy", "1").tags["lineage.method"] == "ppo"


def test_stage_runs_nest_under_one_parent_run_per_pipeline_run(projects):
    by_dvc, by_prefect = projects
    for project, parents in ((by_dvc, 2), (by_prefect, 3)):  # dvc repro + dvc exp run; three flow runs
        runs = mlflow_runs(project)
        pipeline_ids = {r.info.run_id for r in runs if r.data.tags.get("alignflow.kind") == "pipeline"}
        stage_runs = [r for r in runs if "alignflow.stage" in r.data.tags]
        assert len(pipeline_ids) == parents
        assert {r.data.tags["alignflow.stage"] for r in stage_runs} == set(STAGES) - {"machine"}  # it logs nothing
        assert {r.data.tags["mlflow.parentRunId"] for r in stage_runs} <= pipeline_ids


def test_bad_input_fails_with_one_line_and_keeps_earlier_outputs(projects):
    by_dvc, _ = projects
    before = locked_outputs(by_dvc)
    samples = by_dvc / "data/samples/sft.jsonl"
    original = samples.read_text()
    try:
        lines = original.splitlines(keepends=True)
        samples.write_text(
            "".join(lines[:2])
            + '{"id": "bad", "messages": [{"role": "robot", "content": "hi"}]}\n'
            + "".join(lines[2:])
        )
        failed = run(["alignflow", "stage", "ingest"], by_dvc, check=False)
        assert failed.returncode != 0
        line = next(entry for entry in failed.stderr.splitlines() if entry.startswith("error:"))
        assert "data/samples/sft.jsonl:3: messages[0].role: unknown role 'robot'" in line
        assert (by_dvc / "data/raw/sft.jsonl").is_file() and (by_dvc / "data/tokenized/sft").is_dir()
        flow = run(["alignflow", "run", "--stages", "ingest"], by_dvc, check=False)
        assert flow.returncode == 1 and "Retry" not in flow.stdout + flow.stderr  # bad input is not retried
        assert "error: stage ingest failed: data/samples/sft.jsonl:3: messages[0].role" in flow.stderr
    finally:
        samples.write_text(original)
    run(["dvc", "checkout"], by_dvc)
    assert changed_stages(by_dvc) == set()
    assert locked_outputs(by_dvc) == before


def test_a_registered_version_is_restored_and_verified_in_a_fresh_work_tree(projects, tmp_path):
    _, by_prefect = projects
    assert any((by_prefect.parent / "alignflow-dvc-remote").rglob("*")), "the flow pushed nothing (flow.push)"
    target = tmp_path / "v1"
    restored = run(["alignflow", "reproduce", "--version", "1", "--verify", "--into", str(target)], by_prefect)
    assert "every recorded output matched" in restored.stdout and "MISMATCH" not in restored.stdout
    assert "note:" not in restored.stdout, restored.stdout  # a clean tree, the run's record found, nothing rebuilt
    assert "match    models/policy" in restored.stdout
    assert (target / "models/policy/model.safetensors").is_file()


def test_version_1_is_reproduced_after_version_2_was_made_with_other_params(projects, tmp_path):
    import mlflow

    _, by_prefect = projects
    run(["alignflow", "run", "--set", "ppo.learning_rate=0.0"], by_prefect)  # version 2: other params, other policy
    client = mlflow.MlflowClient(f"sqlite:///{by_prefect / 'mlflow.db'}")
    versions = {str(v.version): v for v in client.search_model_versions("name='alignflow-policy'")}
    assert sorted(versions) == ["1", "2"]
    recorded = versions["1"].tags["lineage.dvc.models/policy"]
    assert versions["2"].tags["lineage.dvc.models/policy"] != recorded

    target = tmp_path / "v1"
    restored = run(["alignflow", "reproduce", "--version", "1", "--verify", "--into", str(target)], by_prefect)
    assert "every recorded output matched" in restored.stdout and "MISMATCH" not in restored.stdout
    assert f"match    models/policy: recorded {recorded}" in restored.stdout
    assert "learning_rate: 0.0\n" not in (target / "params.yaml").read_text()  # version 1's params, not the checkout's


def test_verify_fails_on_a_tampered_output_and_on_a_version_without_recorded_hashes(projects, tmp_path):
    import mlflow

    _, by_prefect = projects
    client = mlflow.MlflowClient(f"sqlite:///{by_prefect / 'mlflow.db'}")
    digest = client.get_model_version("alignflow-policy", "1").tags["lineage.dvc.models/policy"].removesuffix(".dir")
    cache = by_prefect / ".dvc/cache/files/md5"
    listing = json.loads((cache / digest[:2] / f"{digest[2:]}.dir").read_text())
    weights = next(item["md5"] for item in listing if item["relpath"] == "model.safetensors")
    for storage in (cache, by_prefect.parent / "alignflow-dvc-remote/files/md5"):  # DVC refetches a bad cache object
        obj = storage / weights[:2] / weights[2:]
        obj.unlink()  # replaced, never rewritten in place: objects are hard links shared with the template
        obj.write_bytes(b"tampered weights")
    tampered = run(
        ["alignflow", "reproduce", "--version", "1", "--verify", "--into", str(tmp_path / "v1")],
        by_prefect,
        check=False,
    )
    assert tampered.returncode == 1 and "some outputs differ from the record" in tampered.stdout
    assert "MISMATCH models/policy: recorded" in tampered.stdout and "match    data/tokenized" in tampered.stdout
    assert "match    dvc status" in tampered.stdout  # DVC trusts its storage: only hashing the files finds this

    for key in [k for k in client.get_model_version("alignflow-policy", "2").tags if k.startswith("lineage.dvc.")]:
        client.delete_model_version_tag("alignflow-policy", "2", key)
    bare = run(
        ["alignflow", "reproduce", "--version", "2", "--verify", "--into", str(tmp_path / "v2")],
        by_prefect,
        check=False,
    )
    errors = [line for line in bare.stderr.splitlines() if line.startswith("error:")]
    assert bare.returncode == 1 and errors == [
        "error: alignflow-policy version 2: no lineage.dvc.* tags, so there is no recorded output to verify against"
    ]


def test_outputs_come_back_from_the_remote_and_a_dead_remote_is_one_line(projects, tmp_path):
    _, by_prefect = projects
    shutil.rmtree(by_prefect / ".dvc/cache")
    shutil.rmtree(by_prefect / "models/policy")
    run(["alignflow", "pull"], by_prefect)
    assert (by_prefect / "models/policy/model.safetensors").is_file()
    assert changed_stages(by_prefect) == set()

    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    run(["dvc", "remote", "add", "--local", "dead", str(blocked / "remote")], by_prefect)
    failed = run(["alignflow", "push", "--remote", "dead"], by_prefect, check=False)
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert failed.returncode == 1 and len(errors) == 1
    assert errors[0].startswith("error: dvc push to remote 'dead' failed") and "stay in this checkout" in errors[0]
    assert changed_stages(by_prefect) == set()


def test_a_lock_made_on_another_kind_of_machine_reruns_training_and_evaluation_and_the_version_says_so(
    tmp_path_factory, tiny_pipeline
):
    """ATEN_CPU_CAPABILITY=avx2 makes torch dispatch to AVX2 kernels, as an AVX2-only CPU would (the template's
    lock and version 1 were made with this CPU's own kernels)."""
    import mlflow

    from alignflow.precision import arithmetic

    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("other_machine") / "project")
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    version_1 = client.get_model_version("alignflow-policy", "1").tags
    here = {f"lineage.machine.{key}": str(value).lower() for key, value in arithmetic().items()}
    assert {key: version_1[key] for key in here} == here and version_1["lineage.precision.sft"] == "no"
    avx2 = {**project_env(project), "ATEN_CPU_CAPABILITY": "avx2"}
    if here["lineage.machine.capability"] == "avx2":
        pytest.skip("machine: this CPU's own kernels are AVX2 already")
    run(["dvc", "repro", "machine"], project, avx2)
    assert json.loads((project / "metrics/machine.json").read_text())["capability"] == "AVX2"
    assert changed_stages(project) == {"sft", "reward", "baseline", "align", "evaluate", "register"}

    # Version 1 recomputed with AVX2 kernels: every stage up to evaluate rebuilt in its own work tree, and its
    # evaluation held against version 1's intervals (no registry write: it logs to the work tree's own store)
    target = project.parent / "v1-recomputed"
    command = ["alignflow", "reproduce", "--version", "1", "--recompute", "--into", str(target)]
    recomputed = run(command, project, avx2, check=False)
    note = next(line for line in recomputed.stdout.splitlines() if "note: made on another kind" in line)
    assert "capability=avx2" in note.split("; here")[1], recomputed.stdout
    assert json.loads((target / "metrics/machine.json").read_text())["capability"] == "AVX2"
    found = json.loads((target / "metrics/eval.json").read_text())
    outside = sorted(
        metric
        for key, low in version_1.items()
        if key.startswith("eval.") and key.endswith("_ci_low")
        for metric in [key.removeprefix("eval.").removesuffix("_ci_low")]
        if not float(low) <= found[metric] <= float(version_1[f"eval.{metric}_ci_high"])
    )
    assert recomputed.returncode == (1 if outside else 0), recomputed.stdout
    assert (
        sorted(line.split()[1].rstrip(":") for line in recomputed.stdout.splitlines() if "MISMATCH" in line) == outside
    )
    assert len(client.search_model_versions("name='alignflow-policy'")) == 1
