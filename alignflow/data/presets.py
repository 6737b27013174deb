"""Presets: named mappings from public datasets' published schemas onto the record contracts (records.py).

`preset: hh-rlhf` on an ingest source reads that dataset's own columns; `fields:` beside it renames them
(`{chosen: my_chosen_column}`), for a copy saved under other column names. A preset turns each row into a record in
an input form the contracts accept, checking the columns it reads as it goes, so errors name the source's column
(`file:12: completions[2].overall_score: missing`); what the contract itself finds later is translated back to
the column it came from. Rows of datasets that score one response per row (HelpSteer2, TRL's unpaired format) are
grouped by prompt into one comparison group, reported at the group's first row.

`alignflow presets` prints this table: each preset, the dataset kinds it maps and the columns each reads.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alignflow.config import SourceParams
from alignflow.data.records import DEFAULT_MAX_PAIRS, FieldError, show, text_field, validate_messages
from alignflow.data.rlvr import verifier_fields
from alignflow.data.sources import parse_transcript
from alignflow.data.validate import Items, Validated, read_items, validate_source

Row = dict[str, Any]
Converter = Callable[[Row], Row]
HH_HUMAN, HH_ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
HELPSTEER_WEIGHTS = {"helpfulness": 0.65, "correctness": 0.8, "coherence": 0.45, "complexity": 0.55, "verbosity": -0.4}
"""The attribute weights the HelpSteer2 paper (Wang et al., 2024) found best for a scalar reward."""
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant"}
SHAREGPT_ROLES |= {"bing": "assistant", "model": "assistant", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    example: str
    """A public dataset in this schema (a hub id or where it is published)."""
    convert: dict[str, Converter]
    """Dataset kind (sft, comparisons, prompts) -> row -> record in an input form of that kind's contract."""
    reads: dict[str, tuple[str, ...]]
    """Kind -> the columns its converter reads (what `alignflow presets` lists)."""
    columns: dict[str, str] = field(default_factory=dict)
    """Contract field -> source column, for the errors the contract raises after conversion; `[i]` in both
    carries the index over and keeps the rest of the path, a target without `[i]` replaces the whole path."""
    grouped: frozenset[str] = frozenset()
    """Kinds whose rows each hold one response: rows with the same prompt form one comparison group."""


# --- shared column readers -------------------------------------------------------------------------------------


def _column(row: Row, column: str) -> Any:
    if column not in row:
        raise FieldError(column, "missing")
    return row[column]


def _turns(row: Row, column: str, ends_with: str = "assistant") -> list[dict[str, str]]:
    return validate_messages(_column(row, column), column, ends_with)


def _number(
    row: Row, column: str, low: float | None = None, high: float | None = None, path: str | None = None
) -> float:
    path = path or column
    if column not in row:
        raise FieldError(path, "missing")
    value = _parsed_number(row[column])
    if value is None:
        raise FieldError(path, f"expected a number, found {show(row[column])}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise FieldError(path, f"{value} outside {'' if low is None else low}-{'' if high is None else high}")
    return float(value)


def _parsed_number(value: Any) -> float | None:
    """A number, also from a numeric string (CSV has no types); None for anything else, NaN included."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return value


def _optional_text(row: Row, column: str) -> str:
    """A column that may be empty or absent (Alpaca's `input`, Dolly's `context`)."""
    if row.get(column) in (None, ""):
        return ""
    return text_field(row, column)


def _prompt_or_turns(row: Row, column: str = "prompt") -> str | list[dict[str, str]]:
    """A prompt as a string or as turns ending with a user turn (TRL's conversational form)."""
    value = _column(row, column)
    return _turns(row, column, ends_with="user") if isinstance(value, list) else text_field(row, column)


def _reply(row: Row, column: str) -> str:
    """A completion as a string, or as TRL's conversational one assistant turn."""
    value = _column(row, column)
    if not isinstance(value, list):
        return text_field(row, column)
    if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role") != "assistant":
        raise FieldError(column, f"expected one assistant turn, found {show(value)}")
    return text_field(value[0], "content", f"{column}[0].content")


def _split_conversations(row: Row, chosen: str, rejected: str) -> tuple[list[dict[str, str]], str, str]:
    """(shared turns, chosen reply, rejected reply) of two conversations that differ only in their last reply."""
    chosen_turns, rejected_turns = _turns(row, chosen), _turns(row, rejected)
    if chosen_turns[:-1] != rejected_turns[:-1]:
        raise FieldError(rejected, f"its turns before the last reply differ from {chosen}'s (a pair shares its prompt)")
    return chosen_turns[:-1], chosen_turns[-1]["content"], rejected_turns[-1]["content"]


def _pair_record(prompt: Any, chosen: str, rejected: str, gap: float | None = None) -> Row:
    return {"prompt": prompt, "pairs": [{"chosen": chosen, "rejected": rejected, "score_gap": gap}]}


def _sft(prompt: Any, reply: str) -> Row:
    turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    return {"messages": [*turns, {"role": "assistant", "content": reply}]}


# --- hh-rlhf ----------------------------------------------------------------------------------------------------


def _hh_transcript(row: Row, column: str) -> list[dict[str, str]]:
    """`\\n\\nHuman: ... \\n\\nAssistant: ...` -> turns ending with an assistant turn."""
    text = text_field(row, column)
    turns = parse_transcript(f"\n\n{text}", HH_HUMAN, HH_ASSISTANT)
    if not text.startswith("Human:") or not turns or turns[-1]["role"] != "assistant":
        raise FieldError(column, "expected an hh-rlhf transcript: `Human: ...` and `Assistant: ...` turns, each "
                         "after a blank line, from a Human turn to an Assistant turn")  # fmt: skip
    return validate_messages(turns, column)


def _hh_comparison(row: Row) -> Row:
    chosen, rejected = _hh_transcript(row, "chosen"), _hh_transcript(row, "rejected")
    if chosen[:-1] != rejected[:-1]:
        raise FieldError("rejected", "its turns before the last reply differ from chosen's (a pair shares its prompt)")
    return _pair_record(chosen[:-1], chosen[-1]["content"], rejected[-1]["content"])


# --- UltraFeedback ----------------------------------------------------------------------------------------------


def _ultrafeedback_binarized(row: Row) -> Row:
    prompt, chosen, rejected = _split_conversations(row, "chosen", "rejected")
    better, worse = _number(row, "score_chosen"), _number(row, "score_rejected")
    if better <= worse:
        raise FieldError("score_chosen", f"{better:g} is not above score_rejected {worse:g}: no preference to learn")
    return _pair_record(prompt, chosen, rejected, better - worse)


def _scored_completions(row: Row) -> list[tuple[str, float]]:
    """Raw UltraFeedback's completions as (response, overall_score), each checked where it stands."""
    completions = _column(row, "completions")
    if not isinstance(completions, list):
        raise FieldError("completions", f"expected a list, found {show(completions)}")
    scored = []
    for index, completion in enumerate(completions):
        where = f"completions[{index}]"
        if not isinstance(completion, dict):
            raise FieldError(where, "expected an object with response and overall_score")
        text = text_field(completion, "response", f"{where}.response")
        scored.append((text, _number(completion, "overall_score", path=f"{where}.overall_score")))
    return scored


def _ultrafeedback_raw(row: Row) -> Row:
    responses = [{"text": text, "score": score} for text, score in _scored_completions(row)]
    return {"prompt": text_field(row, "instruction"), "responses": responses}


def _ultrafeedback_raw_sft(row: Row) -> Row:
    best, _ = max(_scored_completions(row), key=lambda completion: completion[1], default=(None, None))
    if best is None:
        raise FieldError("completions", "empty list")
    return _sft(text_field(row, "instruction"), best)


# --- SHP, HelpSteer2 --------------------------------------------------------------------------------------------


def _shp(row: Row) -> tuple[str, str, str, float | None]:
    """(post, preferred reply, other reply, score gap): the gap is log2 of the score ratio, so a reply with twice
    the other's votes is one point better (null for a ratio of 1)."""
    post, first, second = (text_field(row, c) for c in ("history", "human_ref_A", "human_ref_B"))
    label = _column(row, "labels")
    if label not in (0, 1) or isinstance(label, float):
        raise FieldError("labels", f"expected 1 (human_ref_A preferred) or 0 (human_ref_B), found {show(label)}")
    if first == second:
        raise FieldError("human_ref_B", "identical to human_ref_A")
    ratio = _number(row, "score_ratio", low=1)
    chosen, rejected = (first, second) if label == 1 else (second, first)
    return post, chosen, rejected, math.log2(ratio) or None


def _helpsteer_score(row: Row) -> float:
    """The paper's weighted sum of the five 0-4 ratings (range -1.6 to 9.8), mapped linearly onto our 1-10."""
    total = sum(weight * _number(row, name, 0, 4) for name, weight in HELPSTEER_WEIGHTS.items())
    return round(1 + 9 * (total + 1.6) / 11.4, 6)


# --- TRL's formats ----------------------------------------------------------------------------------------------


def _trl_sft(row: Row) -> Row:
    if "messages" in row:
        return {"messages": _turns(row, "messages")}
    if "prompt" in row or "completion" in row:
        return _sft(_prompt_or_turns(row), _reply(row, "completion"))
    raise FieldError("messages", "missing (TRL's SFT formats: `messages`, or `prompt` and `completion`)")


def _trl_comparison(row: Row) -> Row:
    if "prompt" not in row and isinstance(row.get("chosen"), list) and len(row["chosen"]) > 1:
        return _pair_record(*_split_conversations(row, "chosen", "rejected"))  # TRL's implicit prompt
    return _pair_record(_prompt_or_turns(row), _reply(row, "chosen"), _reply(row, "rejected"))


def _trl_unpaired(row: Row) -> Row:
    label = _column(row, "label")
    if not isinstance(label, bool):
        raise FieldError("label", f"expected true (desirable) or false, found {show(label)}")
    return {"prompt": _prompt_or_turns(row), "response": {"text": _reply(row, "completion"), "label": label}}


# --- instruction and chat formats -------------------------------------------------------------------------------


def _joined(row: Row, first: str, second: str) -> str:
    """An instruction and its optional input/context as one user turn."""
    extra = _optional_text(row, second)
    return f"{text_field(row, first)}\n\n{extra}" if extra else text_field(row, first)


def _sharegpt(row: Row) -> list[dict[str, str]]:
    turns = []
    for index, turn in enumerate(_list(row, "conversations")):
        if not isinstance(turn, dict):
            raise FieldError(f"conversations[{index}]", "expected an object with from and value")
        speaker = turn.get("from")
        if speaker not in SHAREGPT_ROLES:
            known = ", ".join(sorted(SHAREGPT_ROLES))
            raise FieldError(
                f"conversations[{index}].from", f"unknown speaker {show(speaker)}; expected one of {known}"
            )
        turns.append({"role": SHAREGPT_ROLES[speaker], "content": turn.get("value")})
    return turns


def _list(row: Row, column: str) -> list[Any]:
    value = _column(row, column)
    if not isinstance(value, list):
        raise FieldError(column, f"expected a list of turns, found {show(value)}")
    return value


def _up_to_last_user_turn(turns: list[Any]) -> list[Any]:
    """A conversation as a prompt: its turns up to and including the last user turn (the contract checks them)."""
    users = [i for i, turn in enumerate(turns) if isinstance(turn, dict) and turn.get("role") == "user"]
    last = users[-1] if users else len(turns) - 1
    return turns[: last + 1]


def _openai_comparison(row: Row) -> Row:
    source = _column(row, "input")
    if not isinstance(source, dict):
        raise FieldError("input", f"expected an object with messages, found {show(source)}")
    prompt = validate_messages(source.get("messages"), "input.messages", ends_with="user")
    return _pair_record(prompt, _reply(row, "preferred_output"), _reply(row, "non_preferred_output"))


def _messages_field(column: str) -> dict[str, str]:
    """Translations for a contract conversation held in the source's `column`."""
    return {f"{kind}[i]": f"{column}[i]" for kind in ("messages", "prompt")} | {"messages": column, "prompt": column}


PAIR_COLUMNS = {"pairs[i].chosen": "chosen", "pairs[i].rejected": "rejected", "prompt": "chosen", "context": "chosen"}
PRESET_LIST = [
    Preset(
        "hh-rlhf",
        "Anthropic's helpful/harmless pairs: two transcripts that differ in the last Assistant turn",
        "anthropics/hh-rlhf (GitHub), hub:Anthropic/hh-rlhf",
        {
            "comparisons": _hh_comparison,
            "sft": lambda row: {"messages": _hh_transcript(row, "chosen")},
            "prompts": lambda row: {"prompt": _hh_transcript(row, "chosen")[:-1]},
        },
        {"comparisons": ("chosen", "rejected"), "sft": ("chosen",), "prompts": ("chosen",)},
        PAIR_COLUMNS | {"messages": "chosen"},
    ),
    Preset(
        "ultrafeedback-binarized",
        "chosen/rejected conversations with their 1-10 scores (score gap = score_chosen - score_rejected)",
        "hub:HuggingFaceH4/ultrafeedback_binarized (splits train_prefs, train_sft, ...)",
        {
            "comparisons": _ultrafeedback_binarized,
            "sft": lambda row: {"messages": _turns(row, "chosen")},
            "prompts": lambda row: {"prompt": text_field(row, "prompt")},
        },
        {"comparisons": ("chosen", "rejected", "score_chosen", "score_rejected"), "sft": ("chosen",)}
        | {"prompts": ("prompt",)},
        PAIR_COLUMNS | {"messages[i]": "chosen[i]", "pairs[i].score_gap": "score_chosen"},
    ),
    Preset(
        "ultrafeedback",
        "raw UltraFeedback: an instruction and its completions, each rated 1-10 (overall_score); every pair kept",
        "hub:openbmb/UltraFeedback",
        {
            "comparisons": _ultrafeedback_raw,
            "sft": _ultrafeedback_raw_sft,
            "prompts": lambda row: {"prompt": text_field(row, "instruction")},
        },
        {"comparisons": ("instruction", "completions[].response", "completions[].overall_score")}
        | {
            "sft": ("instruction", "completions[].response", "completions[].overall_score"),
            "prompts": ("instruction",),
        },
        {
            "responses[i].text": "completions[i].response",
            "responses[i].score": "completions[i].overall_score",
            "responses[i]": "completions[i]",
            "responses": "completions",
            "prompt": "instruction",
            "messages": "instruction",
        },
    ),
    Preset(
        "shp",
        "Stanford Human Preferences: two human replies, the preferred one by `labels`, gap = log2(score_ratio)",
        "hub:stanfordnlp/SHP",
        {
            "comparisons": lambda row: _pair_record(*_shp(row)),
            "sft": lambda row: _sft(*_shp(row)[:2]),
            "prompts": lambda row: {"prompt": text_field(row, "history")},
        },
        {
            "comparisons": ("history", "human_ref_A", "human_ref_B", "labels", "score_ratio"),
            "sft": ("history", "human_ref_A", "human_ref_B", "labels", "score_ratio"),
            "prompts": ("history",),
        },
        {"prompt": "history", "pairs[i].score_gap": "score_ratio", "pairs[i]": "human_ref_A", "messages": "history"},
    ),
    Preset(
        "helpsteer2",
        "one response per row with five 0-4 ratings; score = 1 + 9 (0.65 helpfulness + 0.8 correctness + 0.45 "
        "coherence + 0.55 complexity - 0.4 verbosity + 1.6) / 11.4; rows sharing a prompt form one group",
        "hub:nvidia/HelpSteer2",
        {
            "comparisons": lambda row: {
                "prompt": text_field(row, "prompt"),
                "response": {"text": text_field(row, "response"), "score": _helpsteer_score(row)},
            },
            "sft": lambda row: _sft(text_field(row, "prompt"), text_field(row, "response")),
            "prompts": lambda row: {"prompt": text_field(row, "prompt")},
        },
        {"comparisons": ("prompt", "response", *HELPSTEER_WEIGHTS), "sft": ("prompt", "response")}
        | {"prompts": ("prompt",)},
        {"responses": "response", "messages": "response"},
        frozenset({"comparisons"}),
    ),
    Preset(
        "trl",
        "TRL's standard and conversational formats: prompt/chosen/rejected (strings or turns, or an implicit "
        "prompt), messages or prompt/completion for SFT",
        "hub:trl-lib/ultrafeedback_binarized, hub:trl-lib/Capybara",
        {"comparisons": _trl_comparison, "sft": _trl_sft, "prompts": lambda row: {"prompt": _prompt_or_turns(row)}},
        {"comparisons": ("prompt", "chosen", "rejected"), "sft": ("messages | prompt, completion",)}
        | {"prompts": ("prompt",)},
        {"pairs[i].chosen": "chosen", "pairs[i].rejected": "rejected"},
    ),
    Preset(
        "trl-unpaired",
        "TRL's unpaired preference format (KTO): prompt, completion, label; per prompt, every desirable "
        "completion is paired with every undesirable one",
        "hub:trl-lib/kto-mix-14k",
        {"comparisons": _trl_unpaired, "prompts": lambda row: {"prompt": _prompt_or_turns(row)}},
        {"comparisons": ("prompt", "completion", "label"), "prompts": ("prompt",)},
        {"responses[i].label": "label", "responses": "label"},
        frozenset({"comparisons"}),
    ),
    Preset(
        "alpaca",
        "instruction, optional input, output (the input follows the instruction after a blank line)",
        "hub:tatsu-lab/alpaca, hub:yahma/alpaca-cleaned",
        {
            "sft": lambda row: _sft(_joined(row, "instruction", "input"), text_field(row, "output")),
            "prompts": lambda row: {"prompt": _joined(row, "instruction", "input")},
        },
        {"sft": ("instruction", "input", "output"), "prompts": ("instruction", "input")},
    ),
    Preset(
        "dolly",
        "instruction, optional context, response (the context follows the instruction after a blank line)",
        "hub:databricks/databricks-dolly-15k",
        {
            "sft": lambda row: _sft(_joined(row, "instruction", "context"), text_field(row, "response")),
            "prompts": lambda row: {"prompt": _joined(row, "instruction", "context")},
        },
        {"sft": ("instruction", "context", "response"), "prompts": ("instruction", "context")},
    ),
    Preset(
        "sharegpt",
        "conversations of {from: human|gpt|system, value}; as prompts, the turns up to the last human one",
        "hub:anon8231489123/ShareGPT_Vicuna_unfiltered, hub:teknium/OpenHermes-2.5",
        {
            "sft": lambda row: {"messages": _sharegpt(row)},
            "prompts": lambda row: {"prompt": _up_to_last_user_turn(_sharegpt(row))},
        },
        {
            "sft": ("conversations[].from", "conversations[].value"),
            "prompts": ("conversations[].from", "conversations[].value"),
        },
        {"messages[i].role": "conversations[i].from", "prompt[i].role": "conversations[i].from"}
        | {"messages[i].content": "conversations[i].value", "prompt[i].content": "conversations[i].value"}
        | _messages_field("conversations"),
    ),
    Preset(
        "openai",
        "OpenAI chat fine-tuning `messages`; for comparisons its preference format: input.messages, "
        "preferred_output, non_preferred_output",
        "OpenAI fine-tuning JSONL (chat and DPO formats)",
        {
            "sft": lambda row: {"messages": _turns(row, "messages")},
            "prompts": lambda row: {"prompt": _up_to_last_user_turn(_list(row, "messages"))},
            "comparisons": _openai_comparison,
        },
        {"sft": ("messages",), "prompts": ("messages",)}
        | {"comparisons": ("input.messages", "preferred_output", "non_preferred_output")},
        {"pairs[i].chosen": "preferred_output", "pairs[i].rejected": "non_preferred_output"}
        | _messages_field("messages"),
    ),
    Preset(
        "rlvr",
        "open-instruct's RLVR prompts (Tulu 3): messages, ground_truth, dataset; IFEval rows' ground_truth becomes "
        "`constraints`, every other row's is the answer the exact and math verifiers check",
        "hub:allenai/RLVR-GSM, hub:allenai/RLVR-IFeval, hub:allenai/RLVR-MATH",
        {"prompts": lambda row: {"prompt": _up_to_last_user_turn(_list(row, "messages")), **verifier_fields(row)}},
        {"prompts": ("messages", "ground_truth", "dataset")},
        {"constraints": "ground_truth"} | _messages_field("messages"),
    ),
]
PRESETS = {preset.name: preset for preset in PRESET_LIST}


def kind_of(dataset: str) -> str:
    """The contract a dataset follows: eval_prompts are prompts."""
    return "prompts" if dataset == "eval_prompts" else dataset


def converter(dataset: str, source_path: str, preset_name: str) -> Converter:
    """The named preset's converter for `dataset`; one line for an unknown preset or one that maps no such data."""
    from alignflow.errors import ConfigError

    preset, kind = PRESETS.get(preset_name), kind_of(dataset)
    if preset is None:
        close = difflib.get_close_matches(preset_name, list(PRESETS), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"ingest.{dataset}.preset: unknown preset {preset_name!r}{hint} (known: {', '.join(PRESETS)})"
        )
    if kind not in preset.convert:
        offered = ", ".join(sorted(preset.convert))
        raise ConfigError(f"ingest.{dataset}: preset {preset.name!r} ({source_path}) maps {offered} data, not {kind}")
    return preset.convert[kind]


def validate_mapped(
    dataset: str, source: SourceParams, on_error: str = "fail", max_pairs: int = DEFAULT_MAX_PAIRS, seed: int = 0
) -> Validated:
    """`validate_source` for ingest: rows through the source's preset, if it names one, and errors spelled with
    the source's own column names."""
    items: Items = read_items(source)
    preset = PRESETS.get(source.preset) if source.preset else None
    if source.preset:
        convert = converter(dataset, source.path, source.preset)
        items = ((where, _converted(convert, data)) for where, data in items)
        items = group_by_prompt(items) if kind_of(dataset) in preset.grouped else items
    return validate_source(
        dataset, source, on_error, max_pairs, seed, items, lambda name: source_field(name, preset, source.fields)
    )


def _converted(convert: Converter, data: Row | FieldError) -> Row | FieldError:
    if isinstance(data, FieldError):
        return data
    try:
        return {"id": data["id"], **convert(data)}
    except FieldError as exc:
        return exc


def group_by_prompt(items: Items) -> Iterator[tuple[Any, Row | FieldError]]:
    """Rows holding one `response` each -> one record per prompt with all its `responses`, at its first row;
    rows that failed pass through as they come."""
    groups: dict[str, tuple[Any, Row]] = {}
    for where, record in items:
        if isinstance(record, FieldError):
            yield where, record
            continue
        key = json.dumps([record["prompt"], record.get("context")], sort_keys=True)
        if key not in groups:
            first = {name: value for name, value in record.items() if name != "response"}
            groups[key] = (where, {**first, "responses": []})
        groups[key][1]["responses"].append(record["response"])
    yield from groups.values()


def source_field(field_path: str | None, preset: Preset | None, fields: dict[str, str]) -> str | None:
    """A contract field path as the source spells it: through the preset's columns, then the `fields` renames."""
    if field_path is None:
        return None
    for contract, column in (preset.columns if preset else {}).items():
        pattern = re.escape(contract).replace(r"\[i\]", r"\[(\d+)\]")
        match = re.match(f"{pattern}(?=$|[.\\[])", field_path)
        if match:
            if "[i]" in column:
                field_path = column.replace("[i]", f"[{match.group(1)}]") + field_path[match.end() :]
            else:
                field_path = column
            break
    renames = {target.removesuffix("_transcript"): column for target, column in fields.items()}
    renames["messages"] = renames.pop("transcript", "messages")  # the `transcript` target fills `messages`
    root = re.match(r"[^.\[]*", field_path).group()
    return renames.get(root, root) + field_path[len(root) :]


def describe() -> str:
    """The presets, what each maps and the columns it reads: what `alignflow presets` prints."""
    lines = []
    for preset in PRESET_LIST:
        lines.append(f"{preset.name}: {preset.summary}")
        lines.append(f"  e.g. {preset.example}")
        for kind, columns in preset.reads.items():
            lines.append(f"  {kind}: {', '.join(columns)}")
    return "\n".join(lines)
