"""MLflow pyfunc wrappers: the policy generates text from prompts; the reward model scores (prompt, response).

`predict` is type-hinted, so MLflow infers each model's signature and checks inputs against it: the policy takes
a list of prompts (or a one-column DataFrame), the reward model a list of {prompt, response} records (or a
DataFrame with those columns). transformers, torch and alignflow's model code are imported in
`load_context`/`predict`, so that importing this module to register a model does not load them.
"""

from typing import Any

import mlflow.pyfunc
import pydantic


class Exchange(pydantic.BaseModel):
    """One (prompt, response) pair for the reward model to score."""

    prompt: str
    response: str


MAX_NEW_TOKENS = 4096
MAX_TEMPERATURE = 5.0


class PolicyGenerator(mlflow.pyfunc.PythonModel):
    """predict(["a prompt", ...], params={"max_new_tokens": 64, "temperature": 0.0}) -> generated replies, rendered
    with the pipeline's chat format. `max_new_tokens` (1 to 4096) defaults to `register.max_new_tokens`;
    `temperature` 0 decodes greedily, above 0 (up to 5) samples."""

    @staticmethod
    def input_example(max_new_tokens: int) -> tuple[list[str], dict[str, Any]]:
        """What the signature's params are read from: their names, types and defaults."""
        return ["How do I keep basil fresh?"], {"max_new_tokens": max_new_tokens, "temperature": 0.0}

    def load_context(self, context) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from alignflow.config import MarkerParams
        from alignflow.data.formatting import ChatFormat
        from alignflow.models.loading import load_pretrained

        config = context.model_config
        self.tokenizer = load_pretrained(AutoTokenizer, context.artifacts["policy"])
        self.model = load_pretrained(AutoModelForCausalLM, context.artifacts["policy"]).eval()
        self.chat = ChatFormat(config["template"], MarkerParams(**config["markers"]))
        self.stop_id = self.tokenizer.convert_tokens_to_ids(config["stop_token"])
        self.max_new_tokens = int(config["max_new_tokens"])

    def predict(self, context, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        import torch

        from alignflow.rl.sampling import pad_left

        max_new_tokens, temperature = self._settings(params or {})
        ids = [
            self.tokenizer(self.chat.prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"]
            for p in model_input
        ]
        queries, mask = pad_left(ids, self.tokenizer.pad_token_id)
        with torch.no_grad():
            output = self.model.generate(
                input_ids=queries,
                attention_mask=mask,
                eos_token_id=self.stop_id,
                pad_token_id=self.tokenizer.pad_token_id,
                do_sample=temperature > 0,
                max_new_tokens=max_new_tokens,
                **({"temperature": temperature} if temperature > 0 else {}),
            )
        return [self.tokenizer.decode(row[queries.shape[1] :], skip_special_tokens=True).strip() for row in output]

    def _settings(self, params: dict[str, Any]) -> tuple[int, float]:
        max_new_tokens, temperature = params.get("max_new_tokens", self.max_new_tokens), params.get("temperature", 0.0)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise ValueError(f"max_new_tokens: expected a whole number, got {max_new_tokens!r}")
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
            raise ValueError(f"max_new_tokens: expected 1 to {MAX_NEW_TOKENS}, got {max_new_tokens}")
        if not 0 <= float(temperature) <= MAX_TEMPERATURE:
            raise ValueError(f"temperature: expected 0 (greedy) to {MAX_TEMPERATURE}, got {temperature}")
        return max_new_tokens, float(temperature)


class RewardModelScorer(mlflow.pyfunc.PythonModel):
    """predict([{"prompt", "response"}, ...] or a DataFrame with those columns) -> scores, encoded exactly as in
    training."""

    INPUT_EXAMPLE = [{"prompt": "How do I keep basil fresh?", "response": "Keep the stems in a glass of water."}]

    def load_context(self, context) -> None:
        from alignflow.models.reward import RewardScorer

        self.scorer = RewardScorer(context.artifacts["reward"], int(context.model_config["max_length"]))

    def predict(self, context, model_input: list[Exchange], params: dict[str, Any] | None = None) -> list[float]:
        return self.scorer([e.prompt for e in model_input], [e.response for e in model_input]).tolist()
