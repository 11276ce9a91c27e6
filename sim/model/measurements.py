"""Published step-time measurements (`sim/data/measurements/`), read into one record type.

Every record is one measured figure in seconds, of one of three regimes:
- `prefill`: one prefill iteration of `batch` prompts of `input_tokens`;
- `decode`: one decode iteration of `batch` sequences at `input_tokens + output_tokens / 2`
  tokens of context (the mean over a generation of `output_tokens`);
- `batch`: a whole static batch, prefill then `output_tokens` decode iterations.
Throughputs (`output_tokens_per_s_per_gpu`) become batch times: batch x output / (value x tp).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sim.errors import Problem, SearchsimError

REGIMES = {"prefill_latency": "prefill", "first_token_latency": "prefill",
           "decode_step": "decode", "batch_latency": "batch",
           "output_tokens_per_s_per_gpu": "batch"}
# Names the sources use for models and hardware, as catalog keys. TensorRT-LLM's A100 rows
# do not state the memory size; Llama-2-70B at batch 1,024 on 4 chips needs 80 GB parts.
MODEL_KEYS = {"GPT-175B": "gpt_175b", "GPT-20B": "gpt_20b", "GPT-6.7B": "gpt_6_7b",
              "llama2-70b": "llama2_70b", "bloom-176b": "bloom_176b"}
HARDWARE_KEYS = {"a100": "a100_80gb", "a100-80gb": "a100_80gb", "h100-80gb": "h100"}
SHIPPED = ("published.csv", "splitwise_perf_model.csv")


@dataclass(frozen=True)
class Measurement:
    source: str
    model: str
    hardware: str
    tp: int
    batch: int
    input_tokens: int
    output_tokens: int
    metric: str
    seconds: float
    ref: str = ""

    @property
    def regime(self) -> str:
        return REGIMES[self.metric]

    @property
    def config(self) -> tuple:
        """Model, hardware and tensor-parallel degree: one deployment."""
        return (self.model, self.hardware, self.tp)


def _model_key(text: str) -> str:
    return MODEL_KEYS.get(text.split(" (")[0], text)


def _published_row(r: dict) -> Measurement:
    tp, batch, out = int(r["tp"]), int(r["batch"]), int(r["output_tokens"])
    value = float(r["value"])
    if r["metric"] == "output_tokens_per_s_per_gpu":
        seconds = batch * out / (value * tp)
    else:
        seconds = value * {"ms": 1e-3, "s": 1.0}[r["unit"]]
    return Measurement(r["source"], _model_key(r["model"]),
                       HARDWARE_KEYS.get(r["hardware"], r["hardware"]), tp, batch,
                       int(r["input_tokens"]), out, r["metric"], seconds, r["ref"])


def _kept_profile_row(r: dict) -> bool:
    """Leave out what the data's notes say is not a measurement: the power-capped rows
    (exactly 1.3 x the H100 prefill) and TP2 at batch 64 (queueing, not one iteration)."""
    return "pcap" not in r["hardware"] and not (r["tensor_parallel"] == "2"
                                                 and r["batch_size"] == "64")


def _profile_rows(rows: list[dict]) -> list[Measurement]:
    """Medians over repeated runs: one prefill figure per (deployment, prompt, batch), one
    decode figure per (deployment, prompt, batch, output length)."""
    prefill, decode = defaultdict(list), defaultdict(list)
    for r in filter(_kept_profile_row, rows):
        key = (_model_key(r["model"]), HARDWARE_KEYS[r["hardware"]], int(r["tensor_parallel"]),
               int(r["batch_size"]), int(r["prompt_size"]))
        prefill[key].append(float(r["prompt_time"]))
        decode[(*key, int(r["token_size"]))].append(float(r["token_time"]))
    ref = "Mutinifni/splitwise-sim data/perf_model.csv (DGX-A100/H100, FP16), medians"
    out = [Measurement("SW", m, hw, tp, b, p, 0, "prefill_latency",
                       statistics.median(v) * 1e-3, ref)
           for (m, hw, tp, b, p), v in sorted(prefill.items())]
    out += [Measurement("SW", m, hw, tp, b, p, o, "decode_step", statistics.median(v) * 1e-3, ref)
            for (m, hw, tp, b, p, o), v in sorted(decode.items())]
    return out


def read(path: str | Path) -> list[Measurement]:
    """A measurements CSV: the published-figures layout or splitwise's profile layout."""
    p = Path(path)
    if not p.is_file():
        raise SearchsimError(Problem("measurements", str(p), "an existing CSV file"))
    return parse(p.read_text(encoding="utf-8"), str(p))


def parse(text: str, name: str) -> list[Measurement]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise SearchsimError(Problem("measurements", name, "a CSV file with rows"))
    if "prompt_time" in rows[0]:
        return _profile_rows(rows)
    need = {"source", "model", "hardware", "tp", "batch", "input_tokens", "output_tokens",
            "metric", "value", "unit"}
    missing = sorted(need - set(rows[0]))
    if missing:
        raise SearchsimError(Problem("measurements", name, "columns " + ", ".join(missing)))
    try:
        return [_published_row(r) for r in rows if r["metric"] in REGIMES]
    except (KeyError, ValueError) as exc:
        raise SearchsimError(Problem("measurements", name, f"numeric fields ({exc})")) from None


def shipped() -> list[Measurement]:
    folder = resources.files("sim").joinpath("data", "measurements")
    return [m for name in SHIPPED
            for m in parse(folder.joinpath(name).read_text(encoding="utf-8"), name)]
