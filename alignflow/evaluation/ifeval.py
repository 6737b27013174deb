"""IFEval (Zhou et al., 2023, arXiv:2311.07911): read its prompts, check responses with lm-evaluation-harness's
rule checkers, and aggregate the paper's four accuracies, a breakdown per instruction group and paired intervals.

The checkers are lm-eval's (`lm_eval.tasks.ifeval`), not ours. They split sentences with NLTK's English Punkt
model, which lm-eval downloads at import when NLTK cannot find it; the project ships that model
(`nltk_data/`, see its NOTICE) and puts it first on NLTK's path, so scoring never touches the network.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from alignflow.errors import DataError
from alignflow.evaluation.statistics import bootstrap_mean, interval_metrics, percentile_interval, resample_indices

PUNKT_DATA = Path(__file__).with_name("nltk_data")
"""NLTK's punkt_tab English tables, shipped so that lm-eval's checkers import and run offline."""


@cache
def checkers() -> Any:
    """lm-eval's IFEval registry module (instruction id -> checker class), imported with the shipped Punkt model."""
    import nltk

    if str(PUNKT_DATA) not in nltk.data.path:
        nltk.data.path.insert(0, str(PUNKT_DATA))
    from lm_eval.tasks.ifeval import instructions_registry

    return instructions_registry


def checker_version() -> str:
    from importlib.metadata import version

    return f"lm-eval {version('lm-eval')}"


@dataclass(frozen=True)
class IFEvalItem:
    key: int
    prompt: str
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]

    @property
    def groups(self) -> tuple[str, ...]:
        """Each instruction's group: `length_constraints` for `length_constraints:number_words`."""
        return tuple(instruction.split(":")[0] for instruction in self.instruction_ids)


def build_checker(instruction_id: str, kwargs: dict[str, Any], prompt: str) -> Any:
    """A checker set up as lm-eval's own scoring sets it up (None-valued kwargs dropped; some take the prompt)."""
    checker = checkers().INSTRUCTION_DICT[instruction_id](instruction_id)
    checker.build_description(**{key: value for key, value in kwargs.items() if value})
    arguments = checker.get_instruction_args()
    if arguments and "prompt" in arguments:
        checker.build_description(prompt=prompt)
    return checker


def parse_item(data: Any, file: str, line: int) -> IFEvalItem:
    """One IFEval record, checked field by field; a problem raises DataError naming file:line:field."""

    def fail(field: str, problem: str) -> DataError:
        return DataError(file, line, field, problem)

    if not isinstance(data, dict):
        raise fail("record", f"expected a JSON object, found {type(data).__name__}")
    for name in ("key", "prompt", "instruction_id_list", "kwargs"):
        if name not in data:
            raise fail(name, "missing (an IFEval record has key, prompt, instruction_id_list and kwargs)")
    key, prompt, ids, kwargs = data["key"], data["prompt"], data["instruction_id_list"], data["kwargs"]
    if not isinstance(key, int) or isinstance(key, bool):
        raise fail("key", f"expected an integer, found {key!r}")
    if not isinstance(prompt, str) or not prompt.strip():
        raise fail("prompt", "expected non-empty text")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise fail("instruction_id_list", "expected a non-empty list of instruction ids")
    if not isinstance(kwargs, list) or not all(isinstance(k, dict) for k in kwargs):
        raise fail("kwargs", "expected a list of objects, one per instruction id")
    if len(kwargs) != len(ids):
        raise fail("kwargs", f"{len(kwargs)} kwargs objects for {len(ids)} instruction ids: give one per id")
    known = checkers().INSTRUCTION_DICT
    for index, (instruction, arguments) in enumerate(zip(ids, kwargs)):
        if instruction not in known:
            raise fail(f"instruction_id_list[{index}]", f"unknown instruction id {instruction!r} ({len(known)} known)")
        try:
            build_checker(instruction, arguments, prompt)
        except (TypeError, ValueError) as exc:
            raise fail(f"kwargs[{index}]", f"does not fit checker {instruction!r}: {exc}") from None
    return IFEvalItem(key, prompt, tuple(ids), tuple(kwargs))


def read_ifeval(path: Path) -> list[IFEvalItem]:
    """Every record of an IFEval-format JSONL file, validated (keys must be unique)."""
    if not Path(path).is_file():
        raise DataError(str(path), None, None, "IFEval file not found (evaluate.ifeval.path names it)")
    items, seen = [], {}
    with open(path, encoding="utf-8") as lines:
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(str(path), number, None, f"not valid JSON ({exc.msg})") from None
            item = parse_item(data, str(path), number)
            if item.key in seen:
                raise DataError(str(path), number, "key", f"duplicate key {item.key} (first at line {seen[item.key]})")
            seen[item.key] = number
            items.append(item)
    if not items:
        raise DataError(str(path), None, None, "no IFEval records")
    return items


def seeded_subset(items: Sequence[IFEvalItem], limit: int, seed: int) -> list[IFEvalItem]:
    """`limit` items drawn with `seed`, in file order (0 or more than there are: all)."""
    if not 0 < limit < len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def follows(item: IFEvalItem, response: str) -> tuple[list[bool], list[bool]]:
    """(strict, loose) verdict per instruction. Loose also accepts the response without its first or last line or
    without `*` markup (the paper's loose criterion), as lm-eval computes it."""
    from lm_eval.tasks.ifeval.utils import (
        InputExample,
        test_instruction_following_loose,
        test_instruction_following_strict,
    )

    checkers()
    example = InputExample(item.key, list(item.instruction_ids), item.prompt, [dict(k) for k in item.kwargs])
    strict = test_instruction_following_strict(example, response).follow_instruction_list
    loose = test_instruction_following_loose(example, response).follow_instruction_list
    return strict, loose


@dataclass(frozen=True)
class Verdicts:
    """One model's IFEval outcome per prompt, in the order of the items it answered."""

    strict: list[list[bool]]
    loose: list[list[bool]]
    finished: list[bool]

    def prompt_level(self, mode: str = "strict") -> list[float]:
        return [float(all(row)) for row in getattr(self, mode)]


def score_responses(items: Sequence[IFEvalItem], responses: Sequence[str], finished: Sequence[bool]) -> Verdicts:
    verdicts = [follows(item, response) for item, response in zip(items, responses, strict=True)]
    return Verdicts([s for s, _ in verdicts], [lo for _, lo in verdicts], [bool(f) for f in finished])


def average_accuracies(rows: Sequence[Sequence[bool]], seed: int) -> dict[str, float]:
    """The mean of prompt- and instruction-level accuracy (how model cards report one IFEval number), with a 95 %
    percentile bootstrap interval over prompts (each resample recomputes both accuracies)."""
    passed = np.array([sum(row) for row in rows], dtype=float)
    counts = np.array([len(row) for row in rows], dtype=float)
    whole = (passed == counts).astype(float)
    draws = resample_indices(len(rows), 2000, 0.95, seed)
    means = (whole[draws].mean(1) + passed[draws].sum(1) / counts[draws].sum(1)) / 2
    value = (whole.mean() + passed.sum() / counts.sum()) / 2
    return {"value": float(value), **percentile_interval(means, 0.95)}


def ifeval_metrics(items: Sequence[IFEvalItem], verdicts: Verdicts, name: str, seed: int = 0) -> dict[str, float]:
    """`ifeval_<measure>_<name>`: prompt- and instruction-level accuracy, strict and loose (the paper's four), their
    strict and loose prompt/instruction means with intervals over prompts, instruction-level strict accuracy per
    group, and the share of answers cut at the token limit."""
    metrics: dict[str, float] = {}
    for mode in ("strict", "loose"):
        rows = getattr(verdicts, mode)
        prompt = sum(all(row) for row in rows) / len(rows)
        flat = [verdict for row in rows for verdict in row]
        metrics[f"ifeval_prompt_{mode}_{name}"] = round(prompt, 4)
        metrics[f"ifeval_inst_{mode}_{name}"] = round(sum(flat) / len(flat), 4)
        metrics.update(interval_metrics(f"ifeval_average_{mode}_{name}", average_accuracies(rows, seed)))
    by_group: dict[str, list[bool]] = {}
    for item, row in zip(items, verdicts.strict):
        for group, verdict in zip(item.groups, row):
            by_group.setdefault(group, []).append(verdict)
    for group, values in sorted(by_group.items()):
        metrics[f"ifeval_group_{group}_{name}"] = round(sum(values) / len(values), 4)
    metrics[f"ifeval_unfinished_{name}"] = round(1 - sum(verdicts.finished) / len(verdicts.finished), 4)
    metrics[f"ifeval_prompts_{name}"] = len(items)
    return metrics


def paired_difference(candidate: Verdicts, baseline: Verdicts, label: str, seed: int) -> dict[str, float]:
    """`ifeval_diff_<label>` (prompt-level strict accuracy, candidate minus baseline, same prompts) with a paired
    bootstrap 95 % interval over prompts."""
    a, b = candidate.prompt_level(), baseline.prompt_level()
    if len(a) != len(b):
        raise ValueError(f"IFEval verdicts for {len(a)} and {len(b)} prompts: score both on the same prompts")
    result = bootstrap_mean([x - y for x, y in zip(a, b)], resamples=2000, confidence=0.95, seed=seed)
    return interval_metrics(f"ifeval_diff_{label}", result)
