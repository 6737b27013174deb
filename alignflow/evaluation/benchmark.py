"""Answer IFEval's prompts with one model, greedily and through its chat template, and check the answers.

This is how the published numbers are made (lighteval: the chat template, no added system prompt, greedy, up to
1280 new tokens), so the base model's score can be held against its model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignflow.config import IFEvalParams
from alignflow.data.formatting import ChatFormat
from alignflow.evaluation.greedy import decode_greedy
from alignflow.evaluation.ifeval import IFEvalItem, Verdicts, score_responses
from alignflow.progress import progress


@dataclass(frozen=True)
class IFEvalAnswers:
    items: list[IFEvalItem]
    responses: list[str]
    lengths: list[int]
    verdicts: Verdicts

    def record(self) -> list[dict]:
        """Per prompt: key, response, tokens, finished, and the strict/loose verdict per instruction."""
        verdicts = self.verdicts
        rows = zip(self.items, self.responses, self.lengths, verdicts.finished, verdicts.strict, verdicts.loose)
        return [
            {"key": item.key, "response": text, "tokens": n, "finished": done, "strict": strict, "loose": loose}
            for item, text, n, done, strict, loose in rows
        ]


def verdicts_from_record(rows: Sequence[dict], keys: Sequence[int], where: str) -> Verdicts:
    """The verdicts a saved record holds, checked to be for the prompts `keys` names (in order)."""
    from alignflow.errors import StageInputError

    if [row.get("key") for row in rows] != list(keys):
        raise StageInputError(f"{where}: ifeval: answers for other IFEval prompts; run `dvc repro baseline` again")
    return Verdicts([r["strict"] for r in rows], [r["loose"] for r in rows], [r["finished"] for r in rows])


def pipeline_items(params) -> list[IFEvalItem]:
    """The IFEval prompts every evaluation stage answers: `evaluate.ifeval.prompts` drawn with common.seed."""
    from alignflow.evaluation.ifeval import read_ifeval, seeded_subset

    config = params.evaluate.ifeval
    return seeded_subset(read_ifeval(Path(config.path)), config.prompts, params.common.seed)


def score_model(params, model, tokenizer, stop_id: int, name: str) -> tuple[dict[str, float], IFEvalAnswers]:
    """`ifeval_*_<name>` metrics and answers of a loaded model on the pipeline's IFEval prompts."""
    from alignflow.data.formatting import ChatFormat
    from alignflow.evaluation.ifeval import ifeval_metrics

    chat = ChatFormat(params.tokenize.template, params.tokenize.markers)
    items = pipeline_items(params)
    answers = answer_ifeval(model, tokenizer, chat, items, stop_id, params.evaluate.ifeval)
    return ifeval_metrics(items, answers.verdicts, name), answers


def answer_ifeval(
    model, tokenizer, chat: ChatFormat, items: Sequence[IFEvalItem], stop_id: int, config: IFEvalParams
) -> IFEvalAnswers:
    """Greedy answers to `items` (up to `batch_size` decoded at once, the batch kept full), checked."""
    prompts = [tokenizer(chat.prompt(tokenizer, item.prompt), add_special_tokens=False)["input_ids"] for item in items]
    progress(f"IFEval: answering {len(items)} prompts (greedy, up to {config.max_new_tokens} tokens)")
    answers, finished = decode_greedy(
        model, prompts, stop_id, tokenizer.pad_token_id, config.max_new_tokens, config.batch_size
    )
    texts = [tokenizer.decode(answer, skip_special_tokens=True).strip() for answer in answers]
    lengths = [len(answer) + done for answer, done in zip(answers, finished)]
    return IFEvalAnswers(list(items), texts, lengths, score_responses(items, texts, finished))


def benchmark_folder(params, folder: Path, config: IFEvalParams) -> tuple[dict[str, float], IFEvalAnswers]:
    """IFEval metrics (`ifeval_*_model`) and answers of the causal LM in `folder`, on `config.prompts` seeded
    prompts (0: all)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignflow.data.formatting import policy_stop_token, prepare_tokenizer
    from alignflow.evaluation.ifeval import ifeval_metrics, read_ifeval, seeded_subset
    from alignflow.models.loading import load_pretrained
    from alignflow.precision import weights_dtype

    items = seeded_subset(read_ifeval(Path(config.path)), config.prompts, params.common.seed)
    tokenizer = load_pretrained(AutoTokenizer, folder)
    chat = prepare_tokenizer(tokenizer, params.tokenize)
    stop_id = tokenizer.convert_tokens_to_ids(policy_stop_token(params, tokenizer))
    dtype = getattr(torch, weights_dtype("evaluate.dtype", params.evaluate.dtype))
    model = load_pretrained(AutoModelForCausalLM, folder, dtype=dtype)
    answers = answer_ifeval(model, tokenizer, chat, items, stop_id, config)
    return ifeval_metrics(items, answers.verdicts, "model"), answers


def resolve_version(client, uri: str) -> Any:
    """The registry version a `models:/<name>/<N>` or `models:/<name>@<alias>` URI names."""
    reference = uri.removeprefix("models:/")
    if "@" in reference:
        name, alias = reference.split("@", 1)
        return client.get_model_version_by_alias(name, alias)
    name, number = reference.rsplit("/", 1)
    return client.get_model_version(name, number)


def log_to_version(client, version, metrics: dict[str, float], answers: IFEvalAnswers, experiment: str) -> str:
    """A run nested under the run that registered `version` (metrics, answers table), and `benchmark.*` tags on
    the version, so old versions scored later compare with new ones in `alignflow registry`."""
    import mlflow

    from alignflow.evaluation.ifeval import checker_version

    mlflow.set_experiment(experiment)
    tags = {"mlflow.parentRunId": version.run_id, "alignflow.benchmark": "ifeval"} if version.run_id else {}
    with mlflow.start_run(run_name=f"benchmark-ifeval-v{version.version}", tags=tags) as run:
        mlflow.log_metrics(metrics)
        rows = answers.record()
        mlflow.log_table({key: [str(row[key]) for row in rows] for key in rows[0]}, "ifeval_answers.json")
    version_tags = {f"benchmark.{key.removesuffix('_model')}": str(value) for key, value in metrics.items()}
    version_tags.update({"benchmark.ifeval_checker": checker_version(), "benchmark.ifeval_run_id": run.info.run_id})
    for key, value in version_tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    return run.info.run_id
