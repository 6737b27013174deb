"""Training prompts must not overlap IFEval's test prompts: a benchmark that leaked into training measures
memory, not instruction following.

The check is word n-gram overlap (lower case, punctuation dropped), as GPT-3 and the Tulu 3 decontamination
reports do. A prompt's attached constraint wording is IFEval's own template text (every prompt with the same
instruction shares it), so it is removed before the comparison: what must not overlap is the task.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alignflow.errors import DataError
from alignflow.evaluation.ifeval import IFEvalItem, build_checker
from alignflow.verifiers.checks import prompt_text

NGRAM = 8
"""Words in a shared run that counts as overlap: long enough that common phrases do not match."""


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def task_text(record: Mapping[str, Any]) -> str:
    """The prompt without the wording of its constraints (rebuilt from their ids and arguments)."""
    text = prompt_text(record)
    for constraint in record.get("constraints") or ():
        checker = build_checker(constraint["instruction_id"], dict(constraint.get("kwargs") or {}), text)
        text = text.replace(checker.build_description(**_description_args(checker, constraint)), " ")
    return text


def _description_args(checker: Any, constraint: Mapping[str, Any]) -> dict[str, Any]:
    arguments = {key: value for key, value in (constraint.get("kwargs") or {}).items() if value}
    return arguments if checker.get_instruction_args() else {}


def check_decontaminated(records: Sequence[Mapping[str, Any]], benchmark: Iterable[IFEvalItem], file: str) -> None:
    """Raise DataError naming `file`, the record's line and the IFEval key it shares a run of words with."""
    seen: dict[tuple[str, ...], int] = {}
    for item in benchmark:
        for gram in ngrams(item.prompt):
            seen.setdefault(gram, item.key)
    for line, record in enumerate(records, 1):
        for gram in ngrams(task_text(record)):
            if gram in seen:
                raise DataError(
                    file,
                    line,
                    "prompt",
                    f"overlaps IFEval prompt {seen[gram]} ('{' '.join(gram)}'): IFEval's test "
                    "prompts must not be trained on",
                )
