"""The built-in verifiers. Each takes (response, prompt record, **options) and returns a reward in [0, 1], or None
when the record carries nothing for it to check (a prompt without `constraints` for `ifeval`, without
`ground_truth` for `exact` and `math`); None leaves the response out of that source's reward.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from alignflow.errors import DataError
from alignflow.evaluation.ifeval import IFEvalItem, follows, parse_item

Record = Mapping[str, Any]


def prompt_text(record: Record) -> str:
    """The prompt as text: a list of turns gives its last user turn (what IFEval's checkers read)."""
    prompt = record.get("prompt", "")
    if isinstance(prompt, list):
        return next((turn["content"] for turn in reversed(prompt) if turn.get("role") == "user"), "")
    return prompt


def constraint_item(record: Record, file: str = "prompt record", line: int | None = None) -> IFEvalItem:
    """The record's `constraints` ([{"instruction_id", "kwargs"}, ...]) as an IFEval item, checked as IFEval's own
    records are (an unknown id or kwargs that do not fit their checker is a DataError naming the field)."""
    constraints = record["constraints"]
    if not isinstance(constraints, list) or not all(isinstance(c, Mapping) for c in constraints):
        raise DataError(file, line, "constraints", "expected a list of {instruction_id, kwargs} objects")
    for index, constraint in enumerate(constraints):
        if not isinstance(constraint.get("instruction_id"), str):
            raise DataError(file, line, f"constraints[{index}].instruction_id", "missing or not text")
    try:
        return parse_item(
            {
                "key": 0,
                "prompt": prompt_text(record) or "-",
                "instruction_id_list": [c["instruction_id"] for c in constraints],
                "kwargs": [dict(c.get("kwargs") or {}) for c in constraints],
            },
            file,
            line,
        )
    except DataError as error:
        raise DataError(file, line, _constraint_field(error.field), error.problem) from None


def _constraint_field(field: str | None) -> str:
    """IFEval's field names (`instruction_id_list[2]`, `kwargs[2]`) as the record's own (`constraints[2]...`)."""
    match = re.fullmatch(r"(instruction_id_list|kwargs)\[(\d+)\]", field or "")
    if not match:
        return "constraints"
    return f"constraints[{match[2]}].{'instruction_id' if match[1].startswith('instruction') else 'kwargs'}"


def ifeval(response: str, record: Record, *, loose: bool = False, all_or_nothing: bool = False) -> float | None:
    """The share of the prompt's IFEval constraints the response follows (strict by default, as IFEval's headline
    prompt-level metric; `all_or_nothing`: 1 only when it follows every one)."""
    if not record.get("constraints"):
        return None
    strict, lenient = follows(constraint_item(record), response)
    verdicts = lenient if loose else strict
    return float(all(verdicts)) if all_or_nothing else sum(verdicts) / len(verdicts)


def regex(response: str, record: Record, *, pattern: str, ignore_case: bool = False, absent: bool = False) -> float:
    """1 when `pattern` occurs in the response (with `absent`: when it does not), else 0."""
    found = re.search(pattern, response, re.IGNORECASE if ignore_case else 0) is not None
    return float(found != absent)


def length(response: str, record: Record, *, min_words: int = 0, max_words: int | None = None) -> float:
    """1 when the response's word count is inside the window, else 0."""
    words = len(response.split())
    return float(words >= min_words and (max_words is None or words <= max_words))


def normalized(text: str) -> str:
    """Lower case without punctuation, articles or extra spaces (SQuAD's answer normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(word for word in text.split() if word not in {"a", "an", "the"})


def exact(response: str, record: Record, *, answer_pattern: str | None = None) -> float | None:
    """1 when the answer equals `ground_truth` (a text or a list of accepted texts) after normalisation. The answer
    is the whole response, or the last match of `answer_pattern`'s first group (e.g. `Answer: (.+)`)."""
    truth = record.get("ground_truth")
    if truth is None:
        return None
    answer = response
    if answer_pattern is not None:
        matches = re.findall(answer_pattern, response)
        if not matches:
            return 0.0
        answer = matches[-1] if isinstance(matches[-1], str) else matches[-1][0]
    accepted = truth if isinstance(truth, list) else [truth]
    return float(normalized(answer) in {normalized(str(t)) for t in accepted})


def math(response: str, record: Record) -> float | None:
    """1 when the response's final answer is mathematically equal to `ground_truth` (Hugging Face's math-verify:
    LaTeX, fractions, sets and intervals compared symbolically, so `\\boxed{1/2}` matches `0.5`)."""
    truth = record.get("ground_truth")
    if truth is None:
        return None
    from math_verify import parse, verify

    expected = str(truth)
    gold = parse(expected if "$" in expected or "\\" in expected else f"${expected}$")
    return float(verify(gold, parse(response)))


BUILTIN = {"ifeval": ifeval, "regex": regex, "length": length, "exact": exact, "math": math}
