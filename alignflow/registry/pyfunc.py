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


class PolicyGenerator(mlflow.pyfunc.PythonModel):
    """predict(["a prompt", ...]) -> generated replies, rendered with the pipeline's chat format."""

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

        params = params or {}
        ids = [
            self.tokenizer(self.chat.prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"]
            for p in model_input
        ]
        queries, mask = pad_left(ids, self.tokenizer.pad_token_id)
        temperature = float(params.get("temperature", 0.0))
        with torch.no_grad():
            output = self.model.generate(
                input_ids=queries,
                attention_mask=mask,
                eos_token_id=self.stop_id,
                pad_token_id=self.tokenizer.pad_token_id,
                do_sample=temperature > 0,
                max_new_tokens=int(params.get("max_new_tokens", self.max_new_tokens)),
                **({"temperature": temperature} if temperature > 0 else {}),
            )
        return [self.tokenizer.decode(row[queries.shape[1] :], skip_special_tokens=True).strip() for row in output]


class RewardModelScorer(mlflow.pyfunc.PythonModel):
    """predict(DataFrame with prompt and response columns) -> scores, encoded exactly as in training."""

    def load_context(self, context) -> None:
        from alignflow.models.reward import RewardScorer

        self.scorer = RewardScorer(context.artifacts["reward"], int(context.model_config["max_length"]))

    def predict(self, context, model_input: list[Exchange], params: dict[str, Any] | None = None) -> list[float]:
        return self.scorer([e.prompt for e in model_input], [e.response for e in model_input]).tolist()
