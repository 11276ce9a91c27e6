"""What a scenario's LLM fleet sustains with every replica running full batches: the one
place both the mixed fleet's relative speeds and the summary's capacity come from."""

from __future__ import annotations

from sim.model import catalog, perf
from sim.scenario.schema import Group, Scenario


def kv_tokens(s: Scenario, model, hardware, tp: int, dp: int = 1) -> int | None:
    """KV-cache tokens a replica on `hardware` of `dp` ranks of `tp` chips holds (None:
    static batching, whose batch the KV cache does not bound)."""
    if s.llm.batching != "continuous":
        return None
    return perf.kv_capacity(model, hardware, tp, s.llm.weight_bytes, s.llm.kv_memory_fraction,
                            s.llm.engine_spec, s.llm.kv_bytes, dp)


def step_of(s: Scenario, model, g: Group) -> perf.StepModel:
    """Group `g`'s step model."""
    return perf.build(s.llm, model, catalog.accelerator(g.hardware), g.tp, g.dp, g.ep)


def seconds_per_request(s: Scenario, model, g: Group, prompt: float, output: float,
                        step: perf.StepModel | None = None, reused: float = 0.0) -> float:
    """Replica-seconds per request of `prompt` and `output` tokens on group `g` at full
    batches (`step`: the group's step model when already built; `reused`: prompt tokens
    read from a prefix cache)."""
    _, prefill, decode = _parts(s, model, g, prompt, output, step, reused)
    return prefill + decode


def requests_per_s(s: Scenario, prompt: float, output: float, reused: float = 0.0) -> float:
    """Requests per second the whole fleet serves at full batches, each reading `reused` of
    its prompt tokens from a prefix cache; a disaggregated fleet, the fewer of what its
    prefill pool prefills and its decode pool decodes."""
    model = catalog.model(s.llm.model)
    if s.llm.disaggregated is not None:
        prefill, decode = s.llm.fleet
        return min(prefill.replicas / _parts(s, model, prefill, prompt, output, None,
                                             reused)[1],
                   decode.replicas / _parts(s, model, decode, prompt, output)[2])
    return sum(g.replicas / seconds_per_request(s, model, g, prompt, output, None, reused)
               for g in s.llm.fleet)


def _parts(s: Scenario, model, g: Group, prompt: float, output: float,
           step: perf.StepModel | None = None, reused: float = 0.0
           ) -> tuple[int, float, float]:
    """(batch, prefill and decode replica-seconds per request) of group `g`."""
    hw = catalog.accelerator(g.hardware)
    step = step if step is not None else step_of(s, model, g)
    return perf.full_batch_parts(step, s.llm.batch_size * g.dp,
                                 kv_tokens(s, model, hw, g.tp, g.dp), prompt, output, reused)
