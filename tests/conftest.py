"""Shared fixtures: a tiny causal LM and tokenizer trained in-process on a few KB of text."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")  # slow to start on 2 busy cores

CORPUS = [
    "How do I keep basil fresh? Put the stems in a glass of water on the counter.",
    "Why is the sky blue? Air scatters short blue wavelengths of sunlight more than red ones.",
    "What is a good way to learn vocabulary? Review new words a little every day with spaced repetition.",
    "My bike chain squeaks. Clean it, let it dry, and apply a drop of chain oil to each link.",
] * 20


@pytest.fixture(scope="session")
def tiny_lm():
    from alignflow.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(CORPUS, seed=0)
