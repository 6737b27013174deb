"""Data contracts: validate raw records and normalise them into the pipeline's canonical form.

Canonical forms (what ingest writes):
- sft:          {"id", "messages": [{"role", "content"}, ...]}   ending with an assistant turn
- comparisons:  {"id", "prompt", "pairs": [{"chosen", "rejected", "score_gap", "category"}, ...]}  (also accepted
                as input); `category` is the rejected response's quality label (e.g. "rude"), or null. Input may
                instead give `responses`, each with a `score` (1-10) or a `label` (true: desirable), which become
                (better, worse) pairs: all of them up to `max_pairs`, else a seeded sample of that many (pairs.py)
- prompts:      {"id", "prompt"} plus, for verifiers, optional `constraints` ([{"instruction_id", "kwargs"}], IFEval's
                instructions) and `ground_truth` (an answer or a list of accepted answers)
Comparisons and prompts may be multi-turn: `prompt` given as a list of turns ending with a user turn (TRL's
conversational form) is kept as `prompt` (that last user turn) plus `context` (the turns before it).
Each validator raises FieldError naming the field; the reader adds the file and line. Values are quoted in
messages cut to a few dozen characters, so a 5 MB field still gives a one-line error. Text may not hold NUL, nor an
unpaired surrogate (JSON can spell one, `"\ud800"`; UTF-8 cannot encode it, so no later stage could write it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from alignflow.data.pairs import ordered_pairs

ROLES = ("system", "user", "assistant")
SCORE_RANGE = (1, 10)
SURROGATE = re.compile("[\ud800-\udfff]")
DEFAULT_MAX_PAIRS = 16
"""Pairs kept per comparison group of scored responses (the default of `ingest.max_pairs_per_group`)."""


class FieldError(ValueError):
    """A contract violation in one field of one record (file and line are added by the reader)."""

    def __init__(self, field: str | None, problem: str):
        super().__init__(problem)
        self.field, self.problem = field, problem


def show(value: Any, limit: int = 60) -> str:
    """repr() of a value for an error message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def text_field(record: dict[str, Any], key: str, path: str | None = None) -> str:
    path = path or key
    if key not in record:
        raise FieldError(path, "missing")
    value = record[key]
    if not isinstance(value, str):
        raise FieldError(path, f"expected a string, found {_kind(value)}")
    if not value.strip():
        raise FieldError(path, "empty")
    _check_encodable(value, path)
    return value.strip()


def _check_encodable(value: str, path: str) -> None:
    if "\x00" in value:
        raise FieldError(path, f"contains a NUL character (at position {value.index(chr(0))})")
    surrogate = SURROGATE.search(value)
    if surrogate:
        raise FieldError(
            path,
            f"contains an unpaired surrogate {surrogate.group()!r} at position {surrogate.start()}, "
            "which cannot be encoded as UTF-8 (a broken escape in the JSON, or text cut inside a character)",
        )


def _number_hint(value: Any) -> str:
    """For a number written as a string ("8"), say so: JSON and Parquet keep the types they were given."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (a string: write the number without quotes, or store the column as a number)"
    return ""


def _record_id(record: dict[str, Any]) -> str:
    if "id" not in record:
        raise FieldError("id", "missing (set `generate_ids: true` on the source to number records)")
    value = record["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise FieldError("id", f"expected a non-empty string or integer, found {show(value)}")
    _check_encodable(str(value), "id")
    return str(value).strip()


def validate_messages(messages: Any, field: str = "messages", ends_with: str = "assistant") -> list[dict[str, str]]:
    """A conversation: optional system turn, then user/assistant alternating, ending with `ends_with`."""
    if not isinstance(messages, list):
        raise FieldError(field, f"expected a list of turns, found {type(messages).__name__}")
    if not messages:
        raise FieldError(field, "empty conversation")
    turns = []
    for index, turn in enumerate(messages):
        where = f"{field}[{index}]"
        if not isinstance(turn, dict):
            raise FieldError(where, f"expected an object with role and content, found {type(turn).__name__}")
        role = turn.get("role")
        if role not in ROLES:
            raise FieldError(f"{where}.role", f"unknown role {show(role)}; expected one of {', '.join(ROLES)}")
        content = text_field(turn, "content", f"{where}.content")
        turns.append({"role": role, "content": content})
    dialogue = turns[1:] if turns[0]["role"] == "system" else turns
    for index, turn in enumerate(dialogue):
        expected = "user" if index % 2 == 0 else "assistant"
        if turn["role"] != expected:
            position = index + len(turns) - len(dialogue)
            raise FieldError(
                f"{field}[{position}].role",
                f"expected {expected!r} (turns alternate user/assistant), found {turn['role']!r}",
            )
    if not dialogue or dialogue[-1]["role"] != ends_with:
        raise FieldError(field, f"conversation must end with a{'n' if ends_with[0] == 'a' else ''} {ends_with} turn")
    return turns


def _prompt(record: dict[str, Any]) -> dict[str, Any]:
    """`prompt` (and `context`, when the prompt has earlier turns) from a string or a list of turns."""
    value = record.get("prompt")
    if isinstance(value, list):
        turns = validate_messages(value, "prompt", ends_with="user")
        return {"prompt": turns[-1]["content"], **({"context": turns[:-1]} if len(turns) > 1 else {})}
    prompt = text_field(record, "prompt")
    if not record.get("context"):
        return {"prompt": prompt}
    turns = validate_messages([*record["context"], {"role": "user", "content": prompt}], "context", ends_with="user")
    return {"prompt": prompt, "context": turns[:-1]}


def normalise_sft(record: dict[str, Any]) -> dict[str, Any]:
    record_id = _record_id(record)
    if "messages" in record:
        return {"id": record_id, "messages": validate_messages(record["messages"])}
    if "prompt" in record or "response" in record:
        prompt, response = text_field(record, "prompt"), text_field(record, "response")
        return {
            "id": record_id,
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        }
    raise FieldError("messages", "missing (expected `messages`, or `prompt` and `response`)")


def _score(response: dict[str, Any], path: str) -> float:
    if "score" not in response:
        raise FieldError(path, "missing")
    score = response["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise FieldError(path, f"expected a number, found {show(score)}{_number_hint(score)}")
    low, high = SCORE_RANGE
    if not low <= score <= high:
        raise FieldError(path, f"score {score} outside {low}-{high}")
    return float(score)


def normalise_comparison(record: dict[str, Any], max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = 0) -> dict[str, Any]:
    """Scored (or labelled) responses become (better, worse) pairs, at most `max_pairs` of them, with the score
    gap kept for the margin (null for labels)."""
    record_id, prompt = _record_id(record), _prompt(record)
    if "responses" in record:
        texts, values, categories, labelled = _responses(record["responses"])
        chosen = ordered_pairs(values, max_pairs, f"{seed}-{record_id}")
        if not chosen:
            what = "labels" if labelled else "scores"
            raise FieldError("responses", f"all {what} are equal, so there is no preference to learn")
        pairs = [
            {
                "chosen": texts[better],
                "rejected": texts[worse],
                "score_gap": None if labelled else values[better] - values[worse],
                "category": categories[worse],
            }
            for better, worse in chosen
        ]
        return {"id": record_id, **prompt, "pairs": pairs}
    if "pairs" in record:  # the canonical form itself, as re-read by later stages
        pairs = record["pairs"]
        if not isinstance(pairs, list) or not pairs:
            raise FieldError("pairs", "expected a non-empty list of {chosen, rejected, score_gap}")
        return {"id": record_id, **prompt, "pairs": [_pair(p, f"pairs[{i}].") for i, p in enumerate(pairs)]}
    if "chosen" in record or "rejected" in record:
        return {"id": record_id, **prompt, "pairs": [_pair({**record, "score_gap": None, "category": None}, "")]}
    raise FieldError("responses", "missing (expected `responses` with scores, or `chosen` and `rejected`)")


def _responses(responses: Any) -> tuple[list[str], list[float], list[str | None], bool]:
    """(texts, scores, categories, labelled): a `label` counts as score 1 (desirable) or 0; a group is all
    scored or all labelled."""
    if not isinstance(responses, list):
        raise FieldError("responses", f"expected a list, found {type(responses).__name__}")
    if len(responses) < 2:
        raise FieldError("responses", f"need at least 2 responses to compare, found {len(responses)}")
    texts, values, categories = [], [], []
    labelled = isinstance(responses[0], dict) and "label" in responses[0] and "score" not in responses[0]
    for index, response in enumerate(responses):
        where = f"responses[{index}]"
        if not isinstance(response, dict):
            raise FieldError(where, "expected an object with text and score")
        texts.append(text_field(response, "text", f"{where}.text"))
        values.append(_label(response, f"{where}.label") if labelled else _score(response, f"{where}.score"))
        categories.append(_category(response, f"{where}.category"))
    return texts, values, categories, labelled


def _label(response: dict[str, Any], path: str) -> float:
    if "label" not in response:
        raise FieldError(path, "missing (a group is all labelled or all scored)")
    if not isinstance(response["label"], bool):
        raise FieldError(path, f"expected true or false, found {show(response['label'])}")
    return float(response["label"])


def _pair(pair: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(pair, dict):
        raise FieldError(prefix.rstrip("."), "expected an object with chosen and rejected")
    chosen, rejected = text_field(pair, "chosen", f"{prefix}chosen"), text_field(pair, "rejected", f"{prefix}rejected")
    if chosen == rejected:
        raise FieldError(f"{prefix}rejected", "identical to chosen")
    gap = pair.get("score_gap")
    if gap is not None and (isinstance(gap, bool) or not isinstance(gap, (int, float)) or gap <= 0):
        raise FieldError(
            f"{prefix}score_gap", f"expected a positive number or null, found {show(gap)}{_number_hint(gap)}"
        )
    return {"chosen": chosen, "rejected": rejected, "score_gap": gap, "category": _category(pair, f"{prefix}category")}


def _category(item: dict[str, Any], path: str) -> str | None:
    """An optional quality label (e.g. "rude", "off_topic"), for per-category reward-model accuracy."""
    if item.get("category") is None:
        return None
    return text_field(item, "category", path)


def normalise_prompt(record: dict[str, Any]) -> dict[str, Any]:
    """A prompt, with what its verifiers check when it carries it: `constraints` (IFEval instruction ids with their
    kwargs) and `ground_truth` (an answer, or a list of accepted answers)."""
    prompt = {"id": _record_id(record), **_prompt(record)}
    if record.get("constraints") is not None:
        prompt["constraints"] = _constraints(record["constraints"])
    if record.get("ground_truth") is not None:
        prompt["ground_truth"] = _ground_truth(record["ground_truth"])
    return prompt


def _constraints(constraints: Any) -> list[dict[str, Any]]:
    """The shape of `constraints`; whether lm-eval's checkers accept each id and its kwargs is ingest's check
    (`alignflow.verifiers.checks.constraint_item`), which needs the checkers this module does without."""
    if not isinstance(constraints, list) or not constraints:
        raise FieldError(
            "constraints", f"expected a list of {{instruction_id, kwargs}} objects, found {show(constraints)}"
        )
    checked = []
    for index, constraint in enumerate(constraints):
        if not isinstance(constraint, dict) or not isinstance(constraint.get("instruction_id"), str):
            raise FieldError(f"constraints[{index}].instruction_id", "missing or not text")
        kwargs = constraint.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise FieldError(f"constraints[{index}].kwargs", f"expected an object, found {show(kwargs)}")
        checked.append({"instruction_id": constraint["instruction_id"], "kwargs": kwargs})
    return checked


def _ground_truth(value: Any) -> str | list[str]:
    answers = value if isinstance(value, list) else [value]
    if not answers or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in answers):
        raise FieldError(
            "ground_truth", f"expected an answer or a list of answers (text or numbers), found {show(value)}"
        )
    texts = [str(a) for a in answers]
    return texts if isinstance(value, list) else texts[0]


NORMALISERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sft": normalise_sft,
    "comparisons": normalise_comparison,
    "prompts": normalise_prompt,
    "eval_prompts": normalise_prompt,
}


def prompt_text(dataset: str, record: dict[str, Any]) -> str:
    """The text dedup compares: the user side of a conversation, or the prompt."""
    if dataset == "sft":
        return "\n".join(m["content"] for m in record["messages"] if m["role"] == "user")
    return record["prompt"]
