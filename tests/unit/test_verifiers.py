"""Rule-checked rewards: each built-in verifier on answers that pass and fail, a user's verifier by dotted path,
one-line errors for a bad entry, and the weighted mix of the reward model with the verifiers."""

import pytest

from alignflow.config import PPOParams, VerifierParams, resolve_verifier
from alignflow.errors import ConfigError, DataError
from alignflow.verifiers.checks import constraint_item, exact, ifeval, length, math, regex
from alignflow.verifiers.sources import RewardSources, source_means

NO_COMMA_AT_LEAST_5_WORDS = {
    "prompt": [{"role": "user", "content": "Describe a cat without commas, in at least five words."}],
    "constraints": [
        {"instruction_id": "punctuation:no_comma"},
        {"instruction_id": "length_constraints:number_words", "kwargs": {"relation": "at least", "num_words": 5}},
    ],
}


def test_ifeval_rewards_the_share_of_constraints_followed():
    assert ifeval("A cat is a small soft animal.", NO_COMMA_AT_LEAST_5_WORDS) == 1.0
    assert ifeval("A small cat, soft.", NO_COMMA_AT_LEAST_5_WORDS) == 0.0
    assert ifeval("A cat is small, soft and quiet.", NO_COMMA_AT_LEAST_5_WORDS) == 0.5
    assert ifeval("A cat is small, soft and quiet.", NO_COMMA_AT_LEAST_5_WORDS, all_or_nothing=True) == 0.0
    assert ifeval("anything", {"prompt": "no constraints here"}) is None


def test_a_bad_constraint_names_its_field():
    unknown = {"prompt": "p", "constraints": [{"instruction_id": "punctuation:no_comma"}, {"instruction_id": "x:y"}]}
    with pytest.raises(DataError, match=r"prompts.jsonl:7: constraints\[1\].instruction_id: unknown instruction id"):
        constraint_item(unknown, "prompts.jsonl", 7)
    misfit = {"prompt": "p", "constraints": [{"instruction_id": "length_constraints:number_words", "kwargs": {"x": 1}}]}
    with pytest.raises(DataError, match=r"constraints\[0\].kwargs: does not fit checker"):
        constraint_item(misfit, "prompts.jsonl", 3)


def test_regex_length_and_exact_pass_and_fail():
    assert regex('{"a": 1}', {}, pattern=r"^\{.*\}$") == 1.0
    assert regex("no json", {}, pattern=r"^\{.*\}$") == 0.0
    assert regex("I cannot help", {}, pattern="cannot", absent=True) == 0.0
    assert length("one two three", {}, min_words=2, max_words=3) == 1.0
    assert length("one", {}, min_words=2) == 0.0 and length("a b c d", {}, max_words=3) == 0.0
    paris = {"ground_truth": ["Paris", "Paris, France"]}
    assert exact("The answer is... paris!", paris, answer_pattern=r"answer is\W*(\w+)") == 1.0
    assert exact("Paris, France.", paris) == 1.0
    assert exact("Lyon", paris) == 0.0 and exact("no pattern", paris, answer_pattern="Answer: (.+)") == 0.0
    assert exact("Paris", {"prompt": "no ground truth"}) is None


def test_math_compares_answers_symbolically():
    half = {"ground_truth": "0.5"}
    assert math("So the result is $\\boxed{\\frac{1}{2}}$.", half) == 1.0
    assert math("So the result is $\\boxed{2}$.", half) == 0.0
    assert math("42", {}) is None


def test_a_users_verifier_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_checks.py").write_text(
        "def mentions(response, record, *, word):\n    return float(word in response)\n"
        "def wrong(response):\n    return 1.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    check = resolve_verifier(VerifierParams("my_checks:mentions", options={"word": "cat"}), "ppo.verifiers[0]")
    assert check("a cat", {}) == 1.0 and check("a dog", {}) == 0.0
    with pytest.raises(ConfigError, match=r"^ppo.verifiers\[0\].name: cannot import 'no_such_module'"):
        resolve_verifier(VerifierParams("no_such_module:f"), "ppo.verifiers[0]")
    with pytest.raises(ConfigError, match=r"^ppo.verifiers\[0\].name: 'my_checks' has no function 'missing'"):
        resolve_verifier(VerifierParams("my_checks:missing"), "ppo.verifiers[0]")
    with pytest.raises(ConfigError, match=r"^ppo.verifiers\[1\]: my_checks:wrong cannot be called as"):
        resolve_verifier(VerifierParams("my_checks:wrong"), "ppo.verifiers[1]")


def test_bad_built_in_entries_fail_with_one_line():
    with pytest.raises(ConfigError, match=r"^ppo.verifiers\[0\].name: unknown verifier 'regexp': one of ifeval"):
        resolve_verifier(VerifierParams("regexp"), "ppo.verifiers[0]")
    with pytest.raises(ConfigError, match=r"^ppo.verifiers\[0\]: regex cannot be called .* \['patern'\]"):
        resolve_verifier(VerifierParams("regex", options={"patern": "x"}), "ppo.verifiers[0]")
    with pytest.raises(ConfigError, match=r"^ppo.verifiers\[0\].options.pattern: not a regular expression"):
        resolve_verifier(VerifierParams("regex", options={"pattern": "("}), "ppo.verifiers[0]")
    with pytest.raises(ConfigError, match="^ppo: no reward source"):
        PPOParams(reward_model_weight=0.0, verifiers=(VerifierParams("length", weight=0.0),))


def test_sources_mix_by_weight_and_skip_what_does_not_apply():
    sources = RewardSources.load(
        0.5,
        [
            VerifierParams("ifeval", weight=2.0),
            VerifierParams("length", options={"max_words": 3}),
            VerifierParams("length", weight=0.25, options={"min_words": 2}),
        ],
        "ppo",
    )
    assert [name for name, _, _ in sources.verifiers] == ["ifeval", "length", "length_2"]
    responses = ["A cat is a small soft animal.", "Short one"]
    records = [NO_COMMA_AT_LEAST_5_WORDS, {"prompt": "Say something short."}]
    verified = sources.score(responses, records)
    assert verified == {"ifeval": [1.0, None], "length": [0.0, 1.0], "length_2": [1.0, 1.0]}
    assert sources.mix([1.0, -2.0], verified) == [0.5 + 2.0 + 0.0 + 0.25, -1.0 + 1.0 + 0.25]
    assert source_means(verified) == {"verifier_ifeval": 1.0, "verifier_length": 0.5, "verifier_length_2": 1.0}
    rules_only = RewardSources.load(0.0, [VerifierParams("length", options={"max_words": 3})], "ppo")
    assert rules_only.mix(None, rules_only.score(responses, records)) == [0.0, 1.0]
