"""Results tables written from the files that measured them: `metrics/*.json` (the committed default run),
`results/runs/*.json` (one record per recorded run, `scripts/record_run.py`), `results/ifeval/*.json`
(`alignflow benchmark` records) and `results/bench/*.json` (benchmarks run with `--out`).

Each function returns the markdown of one generated block; `scripts/write_docs.py` puts it between the block's
markers. A figure typed by hand would drift from its file; these cannot.
"""

from __future__ import annotations

import json
from pathlib import Path

RECORDED = ("eval", "reward", "align", "register", "timing", "machine")
"""The metrics files a run's results record keeps (`scripts/record_run.py`); each may be missing in older ones."""

ROOT = Path(__file__).resolve().parents[2]
MODEL_CARD = {"models/base": ("SmolLM2-135M-Instruct", 29.9)}
"""Published IFEval scores of the base models benchmarked here (the model card's "IFEval (Average prompt/inst)",
measured with lighteval)."""
FOLDERS = {"models/sft/model": "SFT model"}
"""Names of the pipeline's model folders benchmarked by path."""


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def interval(metrics: dict, key: str, scale=percent) -> str:
    return f"{scale(metrics[key])} [{scale(metrics[key + '_ci_low'])}, {scale(metrics[key + '_ci_high'])}]"


def two(value: float) -> str:
    return f"{value:.2f}"


def rate(metrics: dict, key: str) -> str:
    return interval(metrics, key, two) if f"{key}_ci_low" in metrics else two(metrics[key])


def share(value: float) -> str:
    return f"{100 * value:.1f} %"


def stage_order() -> list[str]:
    import yaml

    return list(yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def machine_kind(timing: dict, machine: dict) -> str:
    precision = "bf16" if timing.get("native_bf16", machine.get("native_bf16")) else "fp32"
    cores = timing.get("cores", machine.get("threads"))
    return f"{timing.get('cpu', machine.get('vendor', 'CPU'))}, {cores} cores, {precision}"


def table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {label} | {value} |" for label, value in rows)]


def run_rows(run: dict) -> list[tuple[str, str]]:
    """The headline figures of one run: its eval, reward, register, timing and machine files."""
    m, reward, timing = run.get("eval", {}), run.get("reward", {}), run.get("timing", {})
    rows = [
        (
            "win rate vs SFT, reward model: raw / length-controlled",
            f"{rate(m, 'win_rate_policy_vs_sft')} / {rate(m, 'lc_win_rate_policy_vs_sft')}",
        ),
        (
            "win rate vs SFT, judge: raw / length-controlled",
            f"{rate(m, 'judge_win_rate_policy_vs_sft')} / {rate(m, 'judge_lc_win_rate_policy_vs_sft')}",
        ),
    ]
    if "win_rate_policy_vs_bon" in m:
        rows.append(
            (
                f"win rate vs SFT best-of-{m['best_of_n']} (first {m['best_of_n_prompts']} prompts), reward model / "
                "judge",
                f"{rate(m, 'win_rate_policy_vs_bon')} / {rate(m, 'judge_win_rate_policy_vs_bon')}",
            )
        )
    if "ifeval_prompt_strict_policy" in m:
        scores = " / ".join(percent(m[f"ifeval_prompt_strict_{who}"]) for who in ("base", "sft", "policy"))
        rows.append(
            (
                f"IFEval prompt-level strict, {m['ifeval_prompts_policy']} seeded prompts: base / SFT / policy; "
                "policy − SFT; policy − base",
                f"{scores}; {interval(m, 'ifeval_diff_policy_sft')}; {interval(m, 'ifeval_diff_policy_base')}",
            )
        )
    rows += [
        ("KL(policy ‖ SFT) per response", f"{m['kl_policy_sft_mean']:.1f}"),
        ("mean response length, SFT / policy (tokens)", f"{m['length_sft_mean']:.1f} / {m['length_policy_mean']:.1f}"),
        (
            "held-out SFT perplexity, SFT / policy",
            f"{m['heldout_perplexity_sft']:.1f} / {m['heldout_perplexity_policy']:.1f}",
        ),
        ("unfinished responses, SFT / policy", f"{share(m['unfinished_sft'])} / {share(m['unfinished_policy'])}"),
    ]
    align = run.get("align", {})
    if "kept_update" in align:
        by_verifiers = "kept_curve_verifiers" in align and "initial_reward_mean" not in align
        scorer, name, key = ("verifiers", "verifiers' mean", "curve_verifiers")
        if not by_verifiers:
            scorer, name, key = ("reward model", "win rate", "curve_win_rate")
        rows.append(
            (
                f"PPO update kept (the best on the dev split, by the {scorer})",
                f"{align['kept_update']} of {align['updates']} (dev {name} {two(align[f'kept_{key}'])}; the "
                f"last update's {two(align[f'final_{key}'])})",
            )
        )
    if reward:
        rows.append(
            (
                f"held-out pairwise accuracy ({reward['eval_pairs']} pairs from unseen groups), reward model / judge",
                f"{two(reward['eval_accuracy'])} / {two(reward['judge_eval_accuracy'])}",
            )
        )
    if run.get("register"):
        register = run["register"]
        verdict = f"**promoted** to `@{register['alias']}`" if register["promoted"] else "**rejected**"
        rows.append(("gate", f"{verdict}: {register['reason']}"))
    if timing:
        minutes = timing["stage_minutes"]
        order = [stage for stage in stage_order() if stage in minutes]
        stages = ", ".join(f"{stage} {minutes[stage]:.1f}" for stage in order)
        rows.append(
            (
                f"wall time ({machine_kind(timing, run.get('machine', {}))})",
                f"{timing['total_minutes']:.1f} min ({stages})",
            )
        )
        rows.append(("peak memory (resident set)", f"{timing['peak_rss_gb']:.2f} GiB"))
    return rows


def default_run() -> str:
    """The committed default run, as `alignflow run` leaves it in `metrics/`."""
    run = {name: load(ROOT / f"metrics/{name}.json") for name in RECORDED}
    return "\n".join(table(run_rows(run)))


def records() -> list[dict]:
    """Every recorded run (`results/runs/`), oldest first."""
    return sorted((load(path) for path in (ROOT / "results/runs").glob("*.json")), key=lambda run: run["date"])


def profile_runs() -> str:
    """The newest recorded run of each profile other than the default, in the default run's table."""
    newest = {run["profile"]: run for run in records() if run["profile"] != "default"}
    parts = []
    for profile, run in sorted(newest.items()):
        heading = f"### {profile}: {run['method']}, `configs/{profile}.yaml`, `{run['commit']}`, {run['date'][:10]}"
        parts += [heading, "", *table(run_rows(run)), ""]
    return "\n".join(parts).rstrip()


def ledger() -> str:
    """Every recorded run, newest first: what changed between runs is in its commit."""
    lines = [
        "| date | commit | profile | method | CPU | minutes | RM win rate vs SFT | judge win rate vs SFT | "
        "IFEval policy − SFT | gate |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in reversed(records()):
        # Before the policy slot, the policy's metrics were named after PPO.
        m = {key.replace("_ppo_", "_policy_"): value for key, value in run["eval"].items()}
        timing, register = run.get("timing", {}), run.get("register", {})
        cpu = machine_kind(timing, run.get("machine", {})) if timing or run.get("machine") else "-"
        minutes = f"{timing['total_minutes']:.1f}" if timing else "-"
        ifeval = interval(m, "ifeval_diff_policy_sft") if "ifeval_diff_policy_sft" in m else "-"
        reward_model, judge = (
            rate(m, key) if key in m else "-" for key in ("win_rate_policy_vs_sft", "judge_win_rate_policy_vs_sft")
        )
        gate = ("promoted" if register.get("promoted") else "rejected") if register else "-"
        lines.append(
            f"| {run['date'][:10]} | `{run['commit']}` | {run['profile']} | {run['method']} | {cpu} | {minutes} | "
            f"{reward_model} | {judge} | {ifeval} | {gate} |"
        )
    return "\n".join(lines)


def ifeval_benchmark() -> str:
    """One row per `alignflow benchmark` record; the prompt/instruction means carry 95 % intervals over prompts,
    recomputed from the record's per-prompt verdicts, and a model scored on the same prompts and token limit as a
    base model gets its prompt-level strict difference to it, with a paired interval."""
    from alignflow.evaluation.ifeval import average_accuracies, paired_difference
    from alignflow.evaluation.statistics import interval_metrics

    records = [load(path) for path in sorted((ROOT / "results/ifeval").glob("*.json"))]
    if not records:
        return "No `alignflow benchmark` record is committed under `results/ifeval/` yet."
    lines = [
        "| model (`alignflow benchmark`) | prompts | prompt strict | inst strict | prompt loose | inst loose | "
        "average strict | average loose | published | prompt strict − base | cut at limit | minutes (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    bases = {same_prompts(r): r for r in records if r["model"] in MODEL_CARD}
    for record in records:
        m = {key.removesuffix("_model"): value for key, value in record["metrics"].items()}
        verdicts = verdicts_of(record)
        for mode in ("strict", "loose"):
            m.update(interval_metrics(f"ifeval_average_{mode}", average_accuracies(getattr(verdicts, mode), seed=0)))
        name, published = MODEL_CARD.get(record["model"], (FOLDERS.get(record["model"], record["model"]), None))
        recipe = record.get("recipe") or {}
        if recipe.get("method"):  # a registered version: the recipe that made it says more than its number
            name = f"policy: {recipe['method']}" + (f", profile {recipe['profile']}" if recipe.get("profile") else "")
        commit = record.get("commit", "unknown")  # what made the model: a version's lineage, else the project's
        if commit not in ("", "unknown"):
            name += f" (`{commit[:7]}`)"
        base = bases.get(same_prompts(record))
        if base is not None and base is not record:
            m.update(paired_difference(verdicts, verdicts_of(base), "base", seed=0))
        machine = record["machine"]
        lines.append(
            f"| {name} | {m['ifeval_prompts']} | {percent(m['ifeval_prompt_strict'])} | "
            f"{percent(m['ifeval_inst_strict'])} | {percent(m['ifeval_prompt_loose'])} | "
            f"{percent(m['ifeval_inst_loose'])} | {interval(m, 'ifeval_average_strict')} | "
            f"{interval(m, 'ifeval_average_loose')} | {published if published is not None else '-'} | "
            f"{interval(m, 'ifeval_diff_base') if 'ifeval_diff_base' in m else '-'} | "
            f"{share(m['ifeval_unfinished'])} | {record['minutes']} ({machine['cpu']}, "
            f"{'bf16' if machine['native_bf16'] else 'fp32'}, up to {record['settings']['max_new_tokens']} tokens) |"
        )
    return "\n".join(lines)


def same_prompts(record: dict) -> tuple:
    """What makes two benchmark records comparable prompt by prompt: the prompts and the token limit."""
    return tuple(answer["key"] for answer in record["answers"]), record["settings"]["max_new_tokens"]


def verdicts_of(record: dict):
    from alignflow.evaluation.benchmark import verdicts_from_record

    answers = record["answers"]
    return verdicts_from_record(answers, [answer["key"] for answer in answers], record["model"])


def bench(stem: str) -> str:
    """A benchmark's saved output (`python bench/<stem>.py --out results/bench/<stem>.json`), as a table."""
    result = load(ROOT / f"results/bench/{stem}.json")
    if not result:
        return f"Not yet recorded (`results/bench/{stem}.json`)."
    machine = result.pop("machine", {})
    lines = [f"Measured on {machine_kind(machine, machine)}." if machine else "", ""]
    lines += ["| measure | value |", "|---|---|"]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in result.items()]
    return "\n".join(lines).lstrip()
