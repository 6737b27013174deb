"""The registration sequence of a pipeline run: lineage, one version per model for a candidate, the gate, tags.

Idempotent by candidate key, so a rerun after a crash completes what was cut short instead of duplicating it.
mlflow, transformers and the pyfunc wrappers are imported inside `register_candidate`, so that importing this module
stays fast.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from alignflow import paths, tracking
from alignflow.config import Params, section_dict
from alignflow.data.formatting import ChatFormat, policy_stop_token
from alignflow.evaluation.fingerprint import as_tags
from alignflow.evaluation.statistics import format_interval
from alignflow.models.loading import load_pretrained
from alignflow.progress import progress
from alignflow.registry import client as registry
from alignflow.registry.lineage import dvc_hashes, lineage_tags, machine_tags


def start_summary(params: Params) -> str:
    if params.sft.tuning == "none":
        return f"`{params.ingest.model}` without SFT"
    return f"SFT ({params.sft.tuning}) of `{params.ingest.model}`"


def model_card(params: Params, metrics: dict[str, Any], tags: dict[str, str]) -> str:
    return "\n".join(
        [
            f"# {params.register.model_name}",
            f"Aligned policy from alignflow: {start_summary(params)}, then "
            f"{method_summary(params)}; reward model and judge on `{params.reward.backbone}`.",
            "",
            f"- {metrics.get('prompts')} held-out prompts, 95 % paired bootstrap intervals: win rate vs SFT "
            f"{format_interval(metrics, 'win_rate_policy_vs_sft')} (reward model), "
            f"{format_interval(metrics, 'judge_win_rate_policy_vs_sft')} (judge); "
            f"length-controlled {format_interval(metrics, 'lc_win_rate_policy_vs_sft')} (reward model), "
            f"{format_interval(metrics, 'judge_lc_win_rate_policy_vs_sft')} (judge); "
            f"KL to SFT {metrics.get('kl_policy_sft_mean')}; "
            f"unfinished {metrics.get('unfinished_policy')} (SFT {metrics.get('unfinished_sft')})",
            f"- judge agreement: {metrics.get('judge_agreement')}",
            f"- IFEval ({metrics.get('ifeval_prompts_policy')} prompts, greedy), prompt-level strict accuracy: "
            f"policy {metrics.get('ifeval_prompt_strict_policy')}, SFT {metrics.get('ifeval_prompt_strict_sft')}, "
            f"base {metrics.get('ifeval_prompt_strict_base')}; policy - SFT "
            f"{format_interval(metrics, 'ifeval_diff_policy_sft')}, policy - base "
            f"{format_interval(metrics, 'ifeval_diff_policy_base')}",
            f"- evaluation fingerprint {metrics.get('fingerprint', {}).get('digest')}",
            f"- git {tags.get('lineage.git_commit', '')[:12]} (dirty: {tags.get('lineage.git_dirty')}), "
            f"params {tags.get('lineage.params_hash')}",
            "",
            'Usage: `mlflow.pyfunc.load_model("models:/<name>@staging").predict(["a prompt"])`',
        ]
    )


def method_tags(params: Params) -> dict[str, str]:
    """`lineage.profile` and `lineage.method` (+ `lineage.ppo_advantage` and `lineage.ppo_kept_update` for ppo):
    which recipe made the policy, and which of its updates it is."""
    tags = {"lineage.profile": params.profile, "lineage.method": params.align.method}
    if params.align.method == "ppo":
        tags["lineage.ppo_advantage"] = params.ppo.advantage
        kept = paths.POLICY / paths.KEPT_UPDATE
        if kept.is_file():
            found = json.loads(kept.read_text())
            tags["lineage.ppo_kept_update"] = f"{found['update']} of {found['of']} ({found['keep']})"
    return tags


def method_summary(params: Params) -> str:
    """How the policy was made, in a phrase: the method, its adapter and its budget."""
    method = params.align.method
    config = getattr(params, method)
    if method == "ppo":
        return (
            f"PPO ({config.advantage} advantages, {config.tuning}, {config.updates} updates) against the reward model"
        )
    budget = f"{config.max_steps} steps" if config.max_steps > 0 else f"{config.epochs:g} epochs"
    return (
        f"{method.upper() if method != 'simpo' else 'SimPO'} ({config.tuning}, beta {config.beta}, {budget}) "
        "on the reward model's comparison groups"
    )


def register_candidate(params: Params, eval_metrics: dict[str, Any]) -> dict[str, Any]:
    """Register the policy and reward model in models/ as one candidate (its key: policy hash, params, eval
    metrics), reusing versions a previous attempt registered, then apply the gate. Every step can be rerun."""
    import mlflow

    from alignflow.registry.pyfunc import PolicyGenerator, RewardModelScorer

    config = params.register
    lineage = lineage_tags()
    key = hashlib.sha256(
        json.dumps(
            [dvc_hashes().get(str(paths.POLICY)), lineage["lineage.params_hash"], eval_metrics], sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    tags = {
        **lineage,
        **method_tags(params),
        **machine_tags(params),
        **{f"eval.{k}": str(v) for k, v in eval_metrics.items() if k != "fingerprint"},
        **as_tags(eval_metrics.get("fingerprint", {})),
        registry.CANDIDATE_TAG: key,
    }
    chat = ChatFormat(params.tokenize.template, params.tokenize.markers)
    with tracking.stage_run("register", params.common.experiment, section_dict(config)) as run:
        client = mlflow.MlflowClient()
        version = registry.find_version(client, config.model_name, key)
        if version is None:
            from transformers import AutoTokenizer

            stop = policy_stop_token(params, load_pretrained(AutoTokenizer, paths.POLICY))
            model_config = {
                "template": chat.template,
                "markers": section_dict(chat.markers),
                "stop_token": stop,
                "max_new_tokens": config.max_new_tokens,
            }
            version = registry.log_and_register(
                config.model_name,
                PolicyGenerator(),
                {"policy": str(paths.POLICY)},
                model_config,
                tags,
                PolicyGenerator.input_example(config.max_new_tokens),
            )
        progress(f"{config.model_name} version {version.version} registered")
        reward_version = registry.find_version(client, config.reward_model_name, key)
        if reward_version is None:
            reward_version = registry.log_and_register(
                config.reward_model_name,
                RewardModelScorer(),
                {"reward": str(paths.REWARD_MODEL)},
                {"max_length": params.tokenize.reward_max_length},
                tags,
                RewardModelScorer.INPUT_EXAMPLE,
            )
        progress(f"{config.reward_model_name} version {reward_version.version} registered")
        # descriptions are (re)written every time, so a rerun completes a registration a kill cut short
        client.update_model_version(
            config.model_name, version.version, description=model_card(params, eval_metrics, tags)
        )
        client.update_model_version(
            config.reward_model_name,
            reward_version.version,
            description=f"Reward model used to train {config.model_name} version {version.version}.",
        )
        progress("model cards written")
        decision = registry.gate_and_promote(client, config.model_name, version.version, config)
        progress(f"gate decided: {'promoted' if decision.promote else 'rejected'}")
        result = {
            "version": int(version.version),
            "promoted": decision.promote,
            "reason": decision.reason,
            "alias": config.alias,
            "run_id": run.info.run_id,
        }
        mlflow.set_tags(
            {
                "registered_version": version.version,
                **decision.tags(config.alias),
            }
        )
        mlflow.log_metric("promoted", float(decision.promote))
    return result
