"""The architectures as pure values: what a query fans out to and what each request's
prompt is. The pipeline asks them; they know nothing of SimPy."""

from __future__ import annotations

from dataclasses import dataclass

from sim.serving.query import Query


@dataclass(frozen=True)
class ChatGPTEquivalent:
    """n samples of a response to the prompt alone; the best is kept when all n finish."""

    samples: int
    retrieves = False
    caches = True
    recorded_outputs = False
    name = "chatgpt_equivalent"

    @property
    def fanout(self) -> int:
        return self.samples

    def prompts(self, q: Query) -> list[int]:
        return [q.query_tokens] * self.samples


@dataclass(frozen=True)
class TwoStage:
    """Retrieve top K, summarize each (query + passage as the prompt), keep the best."""

    k: int
    retrieves = True
    caches = True
    recorded_outputs = False
    name = "two_stage"

    @property
    def fanout(self) -> int:
        return self.k

    def prompts(self, q: Query) -> list[int]:
        return [q.query_tokens + p for p in q.passages]


@dataclass(frozen=True)
class DirectLLM:
    """An LLM request trace replayed as recorded: each row is one request with its own
    prompt and output lengths, straight to the LLM pool (no cache, no retrieval)."""

    fanout = 1
    retrieves = False
    caches = False
    recorded_outputs = True  # output lengths come from the trace, not a distribution
    name = "llm_trace"

    def prompts(self, q: Query) -> list[int]:
        return [q.query_tokens]


def architecture(cfg, trace_kind: str | None = None):
    """The architecture that runs: an LLM request trace drives the pool directly, whatever
    the scenario's `[architecture]` says (it has no cache keys or passages)."""
    if trace_kind == "llm":
        return DirectLLM()
    if cfg.kind == "chatgpt_equivalent":
        return ChatGPTEquivalent(cfg.samples)
    return TwoStage(cfg.k)
