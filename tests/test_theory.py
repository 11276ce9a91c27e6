"""The simulator against queueing theory (docs/modelling.md section 8): seeded replications,
warm-up deleted, the theoretical value inside the replications' 95% confidence interval."""

from sim.model import catalog, queueing
from sim.model.perf import ArticleStep
from tests.helpers import confidence_interval, measured, replicate

SEEDS = [11, 12, 13, 14, 15]
MMC_SEEDS = list(range(11, 21))  # at rho = 0.8 one replication's mean wait varies by ~10%
# a small, fast LLM stage so the retrieval pool is what the test measures
FAST_LLM = {"model": "llama2_7b", "hardware": "h100", "tp": 1, "replicas": 2, "max_batch": 64,
            "mfu": 0.5}


def _mmc(lam=8.0, mean_service=0.4, servers=4, duration=3000.0):
    return {
        "run": {"duration_s": duration, "warmup_s": 200.0, "drain_s": 100.0},
        "workload": {"rate_qps": lam, "query_tokens": {"dist": "fixed", "value": 8},
                     "response_tokens": {"dist": "fixed", "value": 1}},
        "retrieval": {"servers": servers, "passage_tokens": {"dist": "fixed", "value": 8},
                      "service_s": {"dist": "exponential", "mean": mean_service,
                                    "unit": "seconds"}},
        "llm": FAST_LLM,
        "architecture": {"kind": "two_stage", "k": 1},
        "economics": {"price": "lambda-on-demand"},
    }


def test_retrieval_is_mmc_mean_wait_and_tail():
    lam, mean_s, c, t = 8.0, 0.4, 4, 0.5
    stats = replicate(_mmc(lam, mean_s, c), MMC_SEEDS,
                      lambda r: (measured(r).retrieval_wait_s.mean(),
                                 (measured(r).retrieval_wait_s > t).mean()))
    waits, tails = zip(*stats, strict=True)
    theory = queueing.mmc_mean_wait(lam, 1 / mean_s, c)
    mean, lo, hi = confidence_interval(waits)
    assert lo <= theory <= hi, (theory, mean, lo, hi)
    theory_tail = queueing.mmc_wait_exceeds(lam, 1 / mean_s, c, t)
    mean, lo, hi = confidence_interval(tails)
    assert lo <= theory_tail <= hi, (theory_tail, mean, lo, hi)


def test_llm_batch_one_is_md1():
    prompt, output, mfu, rho = 100, 20, 0.5, 0.7
    model, hw = catalog.model("llama2_7b"), catalog.accelerator("h100")
    service = (prompt + output) * ArticleStep(model, hw, 1, mfu).seconds_per_token
    lam = rho / service
    sections = {
        "run": {"duration_s": 25000 * service, "warmup_s": 1000 * service,
                "drain_s": 100 * service},
        "workload": {"rate_qps": lam, "query_tokens": {"dist": "fixed", "value": prompt},
                     "response_tokens": {"dist": "fixed", "value": output}},
        "llm": {**FAST_LLM, "replicas": 1, "max_batch": 1},
        "architecture": {"kind": "chatgpt_equivalent", "samples": 1},
        "economics": {"price": "lambda-on-demand"},
    }
    stats = replicate(sections, SEEDS, lambda r: (
        measured(r).llm_wait_s.mean(), (measured(r).latency_s - measured(r).llm_wait_s).std()))
    waits, service_spread = zip(*stats, strict=True)
    theory = queueing.mg1_mean_wait(lam, service, 0.0)
    mean, lo, hi = confidence_interval(waits)
    assert lo <= theory <= hi, (theory, mean, lo, hi)
    assert max(service_spread) < 1e-9  # service is exactly deterministic: latency - wait = D


def test_erlang_c_known_values():
    # a = 2, c = 3: P_wait = 4/9 (textbook value)
    assert abs(queueing.erlang_c(3, 2.0) - 4 / 9) < 1e-12
    assert queueing.erlang_c(1, 0.5) == 0.5  # M/M/1: P_wait = rho
