"""open-instruct's RLVR format (Tulu 3's `allenai/RLVR-*` sets): `messages`, `ground_truth`, `dataset`.

`dataset` says which verifier the row is for. IFEval-style rows (`dataset` starting with "ifeval") carry their
constraint in `ground_truth` as JSON, in one of two spellings:
- IFEval's own, `{"instruction_id": [...], "kwargs": [...]}` (or a list of them), as the multi-constraint sets do;
- open-instruct's older function form, `{"func_name": "verify_paragraph_count", "N": 5, ...}` (RLVR-IFeval).
Both become the prompt record's `constraints`, checked later by lm-eval's IFEval checkers, so the older form is
mapped only where an IFEval checker means exactly the same thing; a row it cannot map is a one-line error (and
`on_error: skip` drops it). Every other row's `ground_truth` is the answer the `exact` and `math` verifiers read.
"""

from __future__ import annotations

import json
from typing import Any

from alignflow.data.records import FieldError, show

Row = dict[str, Any]

FUNCTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "verify_keywords": ("keywords:existence", {"keyword_list": "keywords"}),
    "verify_keyword_frequency": ("keywords:frequency", {"word": "keyword", "N": "frequency"}),
    "validate_forbidden_words": ("keywords:forbidden_words", {"forbidden_words": "forbidden_words"}),
    "verify_letter_frequency": ("keywords:letter_frequency", {"letter": "letter", "N": "let_frequency"}),
    "validate_response_language": ("language:response_language", {"language": "language"}),
    "verify_paragraph_count": ("length_constraints:number_paragraphs", {"N": "num_paragraphs"}),
    "validate_word_constraint": ("length_constraints:number_words", {"N": "num_words"}),
    "verify_sentence_constraint": ("length_constraints:number_sentences", {"N": "num_sentences"}),
    "validate_paragraphs": (
        "length_constraints:nth_paragraph_first_word",
        {"N": "num_paragraphs", "i": "nth_paragraph", "first_word": "first_word"},
    ),
    "verify_postscript": ("detectable_content:postscript", {"postscript_marker": "postscript_marker"}),
    "validate_placeholders": ("detectable_content:number_placeholders", {"N": "num_placeholders"}),
    "verify_bullet_points": ("detectable_format:number_bullet_lists", {"N": "num_bullets"}),
    "validate_title": ("detectable_format:title", {}),
    "validate_highlighted_sections": ("detectable_format:number_highlighted_sections", {"N": "num_highlights"}),
    "validate_sections": (
        "detectable_format:multiple_sections",
        {"N": "num_sections", "section_splitter": "section_spliter"},
    ),
    "validate_json_format": ("detectable_format:json_format", {}),
    "validate_repeat_prompt": ("combination:repeat_prompt", {"original_prompt": "prompt_to_repeat"}),
    "validate_two_responses": ("combination:two_responses", {}),
    "validate_uppercase": ("change_case:english_capital", {}),
    "validate_lowercase": ("change_case:english_lowercase", {}),
    "validate_frequency_capital_words": ("change_case:capital_word_frequency", {"N": "capital_frequency"}),
    "validate_end": ("startend:end_checker", {"end_phrase": "end_phrase"}),
    "validate_quotation": ("startend:quotation", {}),
    "validate_no_commas": ("punctuation:no_comma", {}),
}
"""open-instruct's IFEval function -> (IFEval instruction id, its argument -> the checker's kwarg)."""
RELATION_KWARG = {
    "validate_word_constraint": ("relation", "num_words"),
    "verify_sentence_constraint": ("relation", "num_sentences"),
    "validate_frequency_capital_words": ("capital_relation", "capital_frequency"),
}
"""Functions whose `quantifier` becomes the checker's relation, and the count it bounds."""


def verifier_fields(row: Row) -> Row:
    """What an RLVR row's verifier checks: `constraints` for IFEval rows, `ground_truth` for every other."""
    if "ground_truth" not in row:
        raise FieldError("ground_truth", "missing")
    truth = row["ground_truth"]
    if str(row.get("dataset") or "").lower().startswith("ifeval"):
        return {"constraints": constraints(truth)}
    return {"ground_truth": truth}


def constraints(truth: Any) -> list[Row]:
    """An IFEval row's `ground_truth` (JSON text or already parsed) as [{"instruction_id", "kwargs"}, ...]."""
    if isinstance(truth, str):
        try:
            truth = json.loads(truth)
        except json.JSONDecodeError as error:
            raise FieldError("ground_truth", f"not JSON ({error.msg} at character {error.pos})") from None
    items = truth if isinstance(truth, list) else [truth]
    found: list[Row] = []
    for item in items:
        if isinstance(item, dict) and "instruction_id" in item:
            found += _ifeval_spelling(item)
        elif isinstance(item, dict) and "func_name" in item:
            found.append(_function_spelling(item))
        else:
            raise FieldError("ground_truth", f"expected IFEval constraints or a func_name object, found {show(item)}")
    if not found:
        raise FieldError("ground_truth", "no constraint")
    return found


def _ifeval_spelling(item: Row) -> list[Row]:
    ids, kwargs = item["instruction_id"], item.get("kwargs")
    ids = ids if isinstance(ids, list) else [ids]
    kwargs = kwargs if isinstance(kwargs, list) else [kwargs] * len(ids)
    if len(kwargs) != len(ids):
        raise FieldError("ground_truth.kwargs", f"{len(kwargs)} kwargs for {len(ids)} instruction ids")
    return [
        {"instruction_id": name, "kwargs": {key: value for key, value in (given or {}).items() if value is not None}}
        for name, given in zip(ids, kwargs)
    ]


def _function_spelling(item: Row) -> Row:
    name = item["func_name"]
    if name not in FUNCTIONS:
        raise FieldError("ground_truth.func_name", f"{show(name)} has no IFEval checker that means the same")
    instruction_id, renames = FUNCTIONS[name]
    kwargs = {renames[key]: value for key, value in item.items() if key in renames and value is not None}
    if name in RELATION_KWARG:
        relation, count = RELATION_KWARG[name]
        quantifier = item.get("quantifier") or "at least"
        if quantifier == "at most" and count in kwargs:  # "at most N" is IFEval's "less than N + 1"
            quantifier, kwargs[count] = "less than", kwargs[count] + 1
        if quantifier not in ("at least", "less than"):
            raise FieldError("ground_truth.quantifier", f"{show(quantifier)} has no IFEval relation")
        kwargs[relation] = quantifier
    return {"instruction_id": instruction_id, "kwargs": kwargs}
