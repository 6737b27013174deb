"""Training prompts must not overlap IFEval's test prompts: a benchmark that leaked into training measures
memory, not instruction following.

The check is word n-gram overlap (lower case, punctuation dropped), as GPT-3 and the Tulu 3 decontamination
reports do, with open-instruct's threshold: a training text leaks an IFEval prompt when it holds more than half of
that prompt's 8-word runs. One shared run is not enough: "can you give me some advice on how to" opens hh-rlhf
conversations and IFEval prompts alike. A prompt's attached constraint wording is IFEval's own template text
(every prompt with the same instruction shares it), so it is removed before the comparison: what must not overlap
is the task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alignflow.errors import DataError
from alignflow.evaluation.ifeval import build_checker
from alignflow.verifiers.checks import prompt_text

NGRAM = 8
"""Words in a run that counts as shared."""
MAX_SHARED = 0.5
"""The largest share of an IFEval prompt's runs a training text may hold."""


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def task_text(record: Mapping[str, Any]) -> str:
    """What a training record asks, without the wording of its constraints (rebuilt from their ids and arguments):
    a prompt's text and earlier turns, or an SFT conversation's user turns."""
    turns = [*record.get("context", ()), *record.get("messages", ())]
    text = " ".join([*(t["content"] for t in turns if t.get("role") == "user"), prompt_text(record)])
    for constraint in record.get("constraints") or ():
        checker = build_checker(constraint["instruction_id"], dict(constraint.get("kwargs") or {}), text)
        text = text.replace(checker.build_description(**_description_args(checker, constraint)), " ")
    return text


def _description_args(checker: Any, constraint: Mapping[str, Any]) -> dict[str, Any]:
    arguments = {key: value for key, value in (constraint.get("kwargs") or {}).items() if value}
    return arguments if checker.get_instruction_args() else {}


def benchmark_prompts(path: Path) -> list[tuple[int, str]]:
    """(key, prompt) of every IFEval record, read without building its checkers (importing them is slow, and
    `evaluate` validates the file in full)."""
    if not path.is_file():
        raise DataError(str(path), None, None, "IFEval file not found (evaluate.ifeval.path names it)")
    prompts = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text.strip():
            try:
                record = json.loads(text)
                prompts.append((record["key"], record["prompt"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(str(path), number, None, "not an IFEval record (JSON with key and prompt)") from None
    return prompts


def check_decontaminated(
    texts: Iterable[tuple[int | str, str]], benchmark: Iterable[tuple[int, str]], file: str
) -> None:
    """Raise DataError naming `file`, the text's line and the IFEval key whose runs of words it holds more than
    MAX_SHARED of. `texts` are (line, prompt text without its constraints' wording) pairs, as `task_text` gives."""
    runs: dict[int, int] = {}
    keys_of: dict[tuple[str, ...], list[int]] = {}
    for key, prompt in benchmark:
        grams = ngrams(prompt)
        runs[key] = len(grams)
        for gram in grams:
            keys_of.setdefault(gram, []).append(key)
    for line, text in texts:
        shared: dict[int, list[tuple[str, ...]]] = {}
        for gram in ngrams(text):
            for key in keys_of.get(gram, ()):
                shared.setdefault(key, []).append(gram)
        for key, grams in shared.items():
            if len(grams) > MAX_SHARED * runs[key]:
                raise DataError(
                    file,
                    line,
                    "prompt",
                    f"overlaps IFEval prompt {key} ({len(grams)} of its {runs[key]} {NGRAM}-word runs, e.g. "
                    f"'{' '.join(grams[0])}'): IFEval's test prompts must not be trained on",
                )
