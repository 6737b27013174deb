"""Write the README's IFEval tables from the files that measured them: results/ifeval/*.json (`alignflow
benchmark` records) and metrics/eval.json (the default run's seeded subset).

Run: `python scripts/ifeval_results.py` (rewrites the block between the README's ifeval markers);
`--check` exits 1 when the README differs from what this writes (tests/unit/test_readme_figures.py runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
README = ROOT / "README.md"
BEGIN, END = "<!-- ifeval:begin (scripts/ifeval_results.py) -->", "<!-- ifeval:end -->"
MODEL_CARD = {"models/base": ("SmolLM2-135M-Instruct", 29.9)}
"""Published IFEval scores of the base models benchmarked here ("IFEval (Average prompt/inst)", lighteval)."""


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def interval(metrics: dict, key: str) -> str:
    return f"{percent(metrics[key])} [{percent(metrics[key + '_ci_low'])}, {percent(metrics[key + '_ci_high'])}]"


def benchmark_table(records: list[dict]) -> list[str]:
    """One row per `alignflow benchmark` record; the prompt/instruction means carry 95 % intervals over prompts,
    recomputed from the record's per-prompt verdicts."""
    from alignflow.evaluation.ifeval import average_accuracies
    from alignflow.evaluation.statistics import interval_metrics

    if not records:
        return ["No `alignflow benchmark` record is committed under `results/ifeval/` yet."]
    lines = [
        "| model (`alignflow benchmark`) | prompts | prompt strict | inst strict | prompt loose | inst loose | "
        "average strict | average loose | published | cut at limit | minutes (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        m = {key.removesuffix("_model"): value for key, value in record["metrics"].items()}
        for mode in ("strict", "loose"):
            verdicts = [answer[mode] for answer in record["answers"]]
            m.update(interval_metrics(f"ifeval_average_{mode}", average_accuracies(verdicts, seed=0)))
        name, published = MODEL_CARD.get(record["model"], (record["model"], None))
        machine = record["machine"]
        lines.append(
            f"| {name} | {m['ifeval_prompts']} | {percent(m['ifeval_prompt_strict'])} | "
            f"{percent(m['ifeval_inst_strict'])} | {percent(m['ifeval_prompt_loose'])} | "
            f"{percent(m['ifeval_inst_loose'])} | {interval(m, 'ifeval_average_strict')} | "
            f"{interval(m, 'ifeval_average_loose')} | {published if published is not None else '-'} | "
            f"{percent(m['ifeval_unfinished'])} % | {record['minutes']} ({machine['cpu']}, "
            f"{'bf16' if machine['native_bf16'] else 'fp32'}, up to {record['settings']['max_new_tokens']} tokens) |"
        )
    return lines


def pipeline_table(metrics: dict) -> list[str]:
    if "ifeval_prompt_strict_policy" not in metrics:
        return []
    rows = [("base", "base"), ("SFT", "sft"), ("policy", "policy")]
    lines = [
        "",
        f"The default run's seeded subset ({metrics['ifeval_prompts_policy']} prompts, greedy, `metrics/eval.json`), "
        "prompt-level strict accuracy with paired 95 % intervals on the differences:",
        "",
        "| base | SFT | policy | policy − SFT | policy − base |",
        "|---|---|---|---|---|",
        "| "
        + " | ".join(percent(metrics[f"ifeval_prompt_strict_{key}"]) for _, key in rows)
        + f" | {interval(metrics, 'ifeval_diff_policy_sft')} | {interval(metrics, 'ifeval_diff_policy_base')} |",
    ]
    return lines


def block() -> str:
    records = [json.loads(p.read_text()) for p in sorted((ROOT / "results/ifeval").glob("*.json"))]
    eval_file = ROOT / "metrics/eval.json"
    metrics = json.loads(eval_file.read_text()) if eval_file.is_file() else {}
    lines = [BEGIN, *benchmark_table(records), *pipeline_table(metrics), END]
    return "\n".join(lines)


def rendered(readme: str) -> str:
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + block() + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README differs from the files")
    args = parser.parse_args()
    readme = README.read_text(encoding="utf-8")
    if args.check:
        if rendered(readme) != readme:
            sys.exit("README.md: the IFEval block differs from the files; run python scripts/ifeval_results.py")
        return
    README.write_text(rendered(readme), encoding="utf-8")


if __name__ == "__main__":
    main()
