"""`searchsim validate --data PATH`: a user's own measurements against the current engine.

Three kinds of data, each in a layout the project ships:
- step rows (`published.csv` or splitwise's `perf_model.csv` layout): each row predicted by
  the engine's step-time profile;
- saturated-throughput rows (`trtllm_perf_overview.csv` layout: model, precision, hardware,
  parallelism, input and output tokens, output tokens/s per GPU): each row run as the
  saturated workload it describes, every request queued at once;
- per-request runs (a folder in LLMServingSim's layout, or a folder of them): replayed
  request by request (`servingcheck`).
Nothing is fitted. A row or run the simulator cannot model (a model or accelerator not in
the catalog, a precision or parallelism not yet modelled) is listed with the reason.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from sim.errors import Problem, SearchsimError
from sim.io import servingruns
from sim.io.servingruns import ServingRun
from sim.model import calibration, catalog, measurements, validation
from sim.runner import servingcheck

MODELLED_PRECISIONS = ("fp16", "bf16", "fp8", "fp4", "mxfp4", "int4")
# trtllm-bench's request counts by output length (TensorRT-LLM perf overview)
REQUESTS_BY_OUTPUT = ((2048, 3000), (16384, 1500), (None, 1000))


def kind_of(path: Path) -> str:
    if path.is_dir():
        return "serving"
    if not path.is_file():
        raise SearchsimError(Problem("--data", str(path), "an existing file or folder"))
    header = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return "throughput" if "parallelism" in header.split(",") else "steps"


def _why_not_step(m: measurements.Measurement) -> str | None:
    if m.model not in catalog.models():
        return f"model {m.model!r} is not in the catalog"
    if m.hardware not in catalog.accelerators():
        return f"hardware {m.hardware!r} is not in the catalog"
    return None


def steps(path: Path, engine: str, options: dict | None = None) -> dict:
    ms = measurements.read(path)
    profile = validation.engine_profile(engine, options)
    kept = [m for m in ms if _why_not_step(m) is None]
    scored = calibration.score(kept, profile)
    return {"kind": "steps", "engine": engine, "profile": profile.name,
            "rows": [{"model": s.measurement.model, "hardware": s.measurement.hardware,
                      "tp": s.measurement.tp, "batch": s.measurement.batch,
                      "input_tokens": s.measurement.input_tokens,
                      "output_tokens": s.measurement.output_tokens,
                      "metric": s.measurement.metric, "measured_s": s.measurement.seconds,
                      "predicted_s": s.predicted, "error": s.error} for s in scored],
            "by_regime": calibration.table(scored, lambda m: m.regime) if scored else [],
            "not_modelled": [{"row": f"{m.model} {m.hardware} tp{m.tp} {m.metric}",
                              "why": _why_not_step(m)} for m in ms if _why_not_step(m)]}


def _throughput_rows(path: Path) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    need = {"model", "precision", "hardware", "parallelism", "input_tokens", "output_tokens",
            "value"}
    missing = sorted(need - set(rows[0] if rows else {}))
    if missing:
        raise SearchsimError(Problem("--data", str(path), "columns " + ", ".join(missing)))
    for n, row in enumerate(rows, 2):  # the header is line 1
        try:
            int(row["input_tokens"]), int(row["output_tokens"]), float(row["value"])
            int(row.get("requests") or 1)
        except (TypeError, ValueError):
            raise SearchsimError(Problem(
                f"{path} row {n}", ",".join(str(v) for v in row.values()),
                "integer input_tokens, output_tokens (and requests) and a number value "
                "(quote a parallelism with a comma: \"TP1,PP2\")")) from None
    return rows


def _deployment(row: dict) -> tuple[str | None, str | None, int, str | None]:
    """(model key, hardware key, tensor-parallel degree, why it cannot be modelled)."""
    model = catalog.find(catalog.models(), row["model"])
    hw = catalog.find(catalog.accelerators(), row["hardware"])
    tp = re.fullmatch(r"TP(\d+)(,PP1)?", row["parallelism"].strip())
    why = None
    if model is None:
        why = f"model {row['model']!r} is not in the catalog"
    elif hw is None:
        why = f"hardware {row['hardware']!r} is not in the catalog"
    elif row["precision"].lower() not in MODELLED_PRECISIONS:
        why = f"precision {row['precision']} is not modelled"
    elif tp is None:
        why = (f"parallelism {row['parallelism']} is not yet modelled (tensor parallel only; "
               "no expert, attention-data or pipeline parallelism)")
    return (model.key if model else None, hw.key if hw else None,
            int(tp.group(1)) if tp else 1, why)


def requests_for(output_tokens: int) -> int:
    return next(n for limit, n in REQUESTS_BY_OUTPUT if limit is None or output_tokens <= limit)


def saturated_run(model: str, hardware: str, tp: int, prompt: int, output: int,
                  requests: int, engine: str, options: dict | None = None) -> ServingRun:
    """Every request queued at once with fixed lengths (nothing measured per request): a
    microsecond apart, so that the trace has a span and keeps its order."""
    nan = np.full(requests, np.nan)
    return ServingRun(f"{model} {hardware} tp{tp} {prompt}/{output}", "", model, hardware, tp, 1,
                      engine, dict(options or {}), None, np.arange(requests) * 1e-6,
                      np.full(requests, prompt),
                      np.full(requests, output), nan, nan, nan)


def throughput(path: Path, engine: str, options: dict | None = None,
               profile: str | None = None) -> dict:
    out: list[dict] = []
    skipped: list[dict] = []
    for row in _throughput_rows(path):
        model, hw, tp, why = _deployment(row)
        label = f"{row['model']} {row['precision']} {row['hardware']} {row['parallelism']} " \
                f"{row['input_tokens']}/{row['output_tokens']}"
        if why:
            skipped.append({"row": label, "why": why})
            continue
        prompt, output = int(row["input_tokens"]), int(row["output_tokens"])
        n = int(row.get("requests") or requests_for(output))
        run = saturated_run(model, hw, tp, prompt, output, n, engine,  # type: ignore[arg-type]
                            options)
        sim = servingcheck.simulate(run, engine, options, profile,
                                    precision=row["precision"].lower())
        makespan = float(np.nanmax(sim["latency_s"]))
        predicted = n * output / makespan / tp
        measured = float(row["value"])
        out.append({"row": label, "requests": n, "measured": measured, "predicted": predicted,
                    "error": (predicted - measured) / measured,
                    "experimental_moe": catalog.model(model).is_moe})  # type: ignore[arg-type]
    dense = [abs(float(r["error"])) for r in out if not r["experimental_moe"]]
    moe = [abs(float(r["error"])) for r in out if r["experimental_moe"]]
    return {"kind": "throughput", "engine": engine, "rows": out, "not_modelled": skipped,
            "mape": float(np.mean(dense)) if dense else None,
            "experimental_moe_mape": float(np.mean(moe)) if moe else None}


def shipped_throughput() -> Path:
    """TensorRT-LLM's saturated-throughput table, as shipped."""
    from importlib import resources
    return Path(str(resources.files("sim").joinpath("data", "measurements",
                                                    "trtllm_perf_overview.csv")))


def throughput_residuals(path: Path, engine: str, profile: str) -> list[float]:
    """log(predicted / measured) of every saturated-throughput row that can be modelled."""
    rows = throughput(path, engine, profile=profile)["rows"]
    return [float(np.log(r["predicted"] / r["measured"])) for r in rows
            if not r["experimental_moe"]]


def serving(path: Path, engine: str | None, options: dict | None = None) -> dict:
    rep = servingcheck.report(servingruns.load_folder(path), engine, options)
    return {"kind": "serving", **rep}


def validate(path: Path, engine: str, options: dict | None = None,
             engine_given: bool = False) -> dict:
    """The data at `path` against `engine` (runs keep the engine they name unless one is
    given)."""
    kind = kind_of(path)
    if kind == "serving":
        return serving(path, engine if engine_given else None, options)
    if kind == "throughput":
        return throughput(path, engine, options)
    return steps(path, engine, options)
