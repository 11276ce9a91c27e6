"""The architectures as pure values: what a query fans out to, what each request's prompt
is and which blocks of it are a reusable prefix. The pipeline asks them; they know nothing
of SimPy."""

from __future__ import annotations

from dataclasses import dataclass

from sim.serving.passages import prefix_chain
from sim.serving.query import Query


@dataclass(frozen=True)
class ChatGPTEquivalent:
    """n samples of a response to the prompt alone ([instruction][query]); the best is kept
    when all n finish."""

    samples: int
    instruction: int = 0
    retrieves = False
    caches = True
    recorded_outputs = False
    name = "chatgpt_equivalent"

    @property
    def fanout(self) -> int:
        return self.samples

    def prompts(self, q: Query) -> list[int]:
        return [self.instruction + q.query_tokens] * self.samples

    def chains(self, q: Query, block: int) -> list[tuple[int, ...]]:
        """Each prompt's cacheable prefix: the instruction's whole blocks."""
        return [prefix_chain(None, self.instruction, 0, block)] * self.samples


@dataclass(frozen=True)
class TwoStage:
    """Retrieve top K, summarize each ([instruction][passage][query] as the prompt), keep
    the best."""

    k: int
    instruction: int = 0
    retrieves = True
    caches = True
    recorded_outputs = False
    name = "two_stage"

    @property
    def fanout(self) -> int:
        return self.k

    def prompts(self, q: Query) -> list[int]:
        return [self.instruction + p + q.query_tokens for p in q.passages]

    def chains(self, q: Query, block: int) -> list[tuple[int, ...]]:
        """Each prompt's cacheable prefix: instruction and passage (anonymous passages,
        drawn afresh per request, share only the instruction)."""
        ids = q.passage_ids if q.passage_ids is not None else [None] * self.k
        return [prefix_chain(pid, self.instruction, p, block)
                for pid, p in zip(ids, q.passages, strict=True)]


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

    def chains(self, q: Query, block: int) -> list[tuple[int, ...]]:
        """The trace's own block hashes where it has them (the Mooncake trace's
        `hash_ids`), else nothing to reuse."""
        return [q.chain or ()]


def architecture(cfg, trace_kind: str | None = None, instruction: int = 0):
    """The architecture that runs: an LLM request trace drives the pool directly, whatever
    the scenario's `[architecture]` says (it has no cache keys or passages). `instruction`:
    tokens of the instruction before each generated prompt."""
    if trace_kind == "llm":
        return DirectLLM()
    if cfg.kind == "chatgpt_equivalent":
        return ChatGPTEquivalent(cfg.samples, instruction)
    return TwoStage(cfg.k, instruction)
