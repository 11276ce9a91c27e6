"""Energy and ownership: what the LLM pool's accelerators drew in the window (from the power
level the schedulers keep: idle, prefill and decode watts per chip, from the catalog) and what
the fleet costs owned rather than rented (capital amortized, plus that energy at the
facility's PUE and electricity price). The accelerators' draw is measured by state; the
hosts' (`economics.owned.server_w` per server, 0 unless given) is a constant added to the
owned view's energy; retrieval servers' power is not modelled."""

from __future__ import annotations

from sim.errors import SearchsimError
from sim.units import SECONDS_PER_HOUR

JOULES_PER_KWH = 3.6e6
OWNED_KEYS = ("owned_usd_per_chip_hour", "owned_cost_per_query", "owned_capex_usd_per_query",
              "owned_energy_usd_per_query", "owned_revenue_share", "host_energy_kwh")


def energy_figures(s, arch, n_done: int, snap) -> dict:
    """Window energy and mean power of the LLM pool; per completed query (idle included, as
    the provisioned cost is); and the owned view."""
    w0, w1 = s.run.warmup_s, s.run.duration_s
    joules = snap.power_w.integral(w0, w1)
    kwh = joules / JOULES_PER_KWH
    return {
        "llm_power_w_mean": joules / (w1 - w0),
        "llm_energy_kwh": kwh,
        "energy_per_query_j": joules / n_done if n_done else None,
        "energy_per_query_kwh": kwh / n_done if n_done else None,
        **owned_figures(s, arch, kwh, n_done),
    }


def owned_figures(s, arch, kwh: float, n_done: int) -> dict:
    """The fleet owned: `economics.owned` (or its defaults); None where the hardware has no
    purchase price to amortize."""
    try:
        costs = [(g.chips, s.economics.owned.cost(g.hardware)) for g in s.llm.fleet]
    except SearchsimError:
        return dict.fromkeys(OWNED_KEYS)
    chips = s.llm.chips
    hours = (s.run.duration_s - s.run.warmup_s) / SECONDS_PER_HOUR
    capex = sum(n * cost.capex_usd_per_chip_hour for n, cost in costs) * hours
    host_kwh = host_energy_kwh(s, hours)
    energy = (kwh + host_kwh) * costs[0][1].usd_per_it_kwh  # one facility: one PUE, price
    retrieval = s.retrieval.servers * s.retrieval.usd_per_server_hour * hours \
        if arch.retrieves else 0.0
    per_query = (capex + energy + retrieval) / n_done if n_done else None
    return {
        "owned_usd_per_chip_hour": (capex + energy) / (chips * hours),
        "owned_cost_per_query": per_query,
        "owned_capex_usd_per_query": capex / n_done if n_done else None,
        "owned_energy_usd_per_query": energy / n_done if n_done else None,
        "owned_revenue_share": per_query / s.economics.revenue_per_query
        if per_query is not None else None,
        "host_energy_kwh": host_kwh,
    }


def host_energy_kwh(s, hours: float) -> float:
    """The hosts' draw over `hours`: `server_w` per server of `chips_per_server`
    accelerators, shared per chip as the servers' capital is (replicas pack into servers;
    a shard of a fleet draws its share, not whole servers of its own)."""
    owned = s.economics.owned
    servers = s.llm.chips / owned.chips_per_server
    return owned.server_w * servers * hours / 1000.0
