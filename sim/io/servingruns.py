"""Whole serving runs, request by request: read from folders in LLMServingSim's layout.

A run folder holds `meta.json` (the engine's settings) and `requests.jsonl` (per request its
lengths, arrival time and the engine's own timestamps). Its deployment (model, hardware,
parallelism, engine) comes from a `runs.toml` beside the folders where there is one (the
shipped runs), else from `meta.json`: the model's Hugging Face id and the device name are
looked up among the catalog's aliases. A run whose model or hardware is not in the catalog,
or is not yet modelled, is kept with the reason, so that it is listed, never dropped.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from sim.errors import Problem, SearchsimError
from sim.model import catalog

SHIPPED = ("measurements", "serving", "llmservingsim-vllm")


@dataclass(frozen=True)
class ServingRun:
    name: str
    source: str
    model: str | None  # catalog keys (None: not in the catalog)
    hardware: str | None
    tp: int
    dp: int  # data-parallel engines, each a replica
    engine: str
    engine_options: dict = field(default_factory=dict)
    not_modelled: str | None = None  # why the simulator cannot replay it
    arrival_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # from the first
    prompt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    output: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    ttft_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tpot_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # NaN for 1 token
    latency_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # a mixture of experts served wide: data-parallel attention ranks in one replica and
    # expert-parallel groups (vLLM's data_parallel_size with enable_expert_parallel)
    ranks: int = 1
    ep: int = 1

    @property
    def requests(self) -> int:
        return len(self.prompt)

    @property
    def moe(self) -> bool:
        """Whether the run's model (in the catalog) is a mixture of experts."""
        return self.model is not None and catalog.model(self.model).is_moe


def is_run(folder: Path) -> bool:
    return (folder / "requests.jsonl").is_file()


def _requests(path: Path) -> dict[str, np.ndarray]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            rows.append((float(r["arrival_time"]), int(r["input_toks"]), int(r["output_toks"]),
                         float(r["queued_ts"]), float(r["first_token_ts"]),
                         float(r["last_token_ts"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise SearchsimError(Problem(f"{path}:{n}", line[:60], "a JSON object with "
                                         "arrival_time, input_toks, output_toks, queued_ts, "
                                         f"first_token_ts, last_token_ts ({exc})")) from None
    if not rows:
        raise SearchsimError(Problem(str(path), "", "at least one request"))
    a = np.array(sorted(rows), dtype=float)
    arrival, prompt, output, queued, first, last = a.T
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(output > 1, (last - first) / (output - 1), np.nan)
    return {"arrival_s": arrival - arrival[0], "prompt": prompt.astype(int),
            "output": output.astype(int), "ttft_s": first - queued, "tpot_s": tpot,
            "latency_s": last - queued}


def _engine_of(meta: dict) -> tuple[str, dict]:
    """The engine a vLLM run used and the settings it stated."""
    version = str(meta.get("vllm_version", "0.8"))
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        major, minor = 0, 8
    engine = "vllm-v1" if (major, minor) >= (0, 8) else "vllm-v0"
    kw, kv = meta.get("engine_kwargs", {}), meta.get("kv_cache", {})
    opts = {k: kw[k] for k in ("max_num_seqs", "max_num_batched_tokens") if kw.get(k)}
    for k in ("block_size", "gpu_memory_utilization"):
        if kv.get(k):
            opts[k] = kv[k]
    return engine, opts


def _deployment(folder: Path, meta: dict) -> dict:
    """A run's deployment from `meta.json`: model and hardware by catalog alias."""
    kw = meta.get("engine_kwargs", {})
    model = catalog.find(catalog.models(), str(meta.get("model", kw.get("model", ""))))
    device = meta.get("hardware", {}).get("device_name") or folder.name.split("_")[0]
    hw = catalog.find(catalog.accelerators(), str(device))
    engine, opts = _engine_of(meta)
    tp, dp = int(kw.get("tensor_parallel_size", 1)), int(kw.get("data_parallel_size", 1))
    return {"model": model.key if model else None, "hardware": hw.key if hw else None,
            "tp": tp, "dp": dp, "ep": tp * dp if kw.get("enable_expert_parallel") else 1,
            "engine": engine,
            "engine_options": opts,
            "why": None if model and hw else
            f"{'model ' + repr(meta.get('model')) if not model else 'hardware ' + repr(device)}"
            " is not in the catalog"}


def _not_modelled(d: dict) -> str | None:
    return d.get("why")


def _layout(d: dict) -> dict:
    """(tp, replicas, ranks, ep): with expert parallelism vLLM's data-parallel engines are
    the attention ranks of one replica (their MoE layers run together), else replicas."""
    tp, dp, ep = int(d.get("tp", 1)), int(d.get("dp", 1)), int(d.get("ep", 1))
    if ep > 1:
        return {"tp": tp, "dp": 1, "ranks": dp, "ep": ep}
    return {"tp": tp, "dp": dp, "ranks": 1, "ep": 1}


def load_run(folder: Path, index: dict | None = None, source: str = "") -> ServingRun:
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    d = dict(index) if index else _deployment(folder, meta)
    layout = _layout(d)
    return ServingRun(folder.name, source or str(folder), d.get("model"), d.get("hardware"),
                      layout["tp"], layout["dp"], d.get("engine", "vllm-v1"),
                      dict(d.get("engine_options", {})), _not_modelled(d),
                      **_requests(folder / "requests.jsonl"), ranks=layout["ranks"],
                      ep=layout["ep"])


def load_folder(folder: Path) -> list[ServingRun]:
    """Every run in `folder` (or the run that `folder` is)."""
    if is_run(folder):
        return [load_run(folder)]
    index_path = folder / "runs.toml"
    index = tomllib.loads(index_path.read_text("utf-8")) if index_path.is_file() else {}
    runs = [load_run(sub, index.get("runs", {}).get(sub.name), index.get("source", ""))
            for sub in sorted(folder.iterdir()) if sub.is_dir() and is_run(sub)]
    if not runs:
        raise SearchsimError(Problem("--data", str(folder), "a run folder (meta.json, "
                                     "requests.jsonl) or a folder of them"))
    return runs


def shipped() -> list[ServingRun]:
    with resources.as_file(resources.files("sim").joinpath("data", *SHIPPED)) as folder:
        return load_folder(Path(folder))
