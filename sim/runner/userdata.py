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
import os
import re
from pathlib import Path

import numpy as np

from sim.errors import Problem, SearchsimError
from sim.io import servingruns
from sim.io.servingruns import ServingRun
from sim.model import calibration, catalog, measurements, validation
from sim.runner import parallel, servingcheck

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


def parallelism(text: str) -> tuple[int, int, int] | None:
    """(tp, dp, ep) of a layout as TensorRT-LLM's table writes it: "TP2" (tensor parallel,
    experts sliced), "DEP4" (attention data parallel and expert parallel over 4 GPUs),
    "TP4,EP4" (attention tensor parallel, experts split 4 ways); ",PP1" allowed. None:
    pipeline parallelism or a form not read."""
    m = re.fullmatch(r"(DEP|TP)(\d+)(?:,EP(\d+))?(?:,PP1)?", text.strip().upper())
    if m is None:
        return None
    n = int(m.group(2))
    if m.group(1) == "DEP":
        return (1, n, n) if m.group(3) is None else None
    return n, 1, int(m.group(3) or 1)


def _deployment(row: dict) -> tuple[str | None, str | None, tuple[int, int, int], str | None]:
    """(model key, hardware key, (tp, dp, ep), why it cannot be modelled)."""
    model = catalog.find(catalog.models(), row["model"])
    hw = catalog.find(catalog.accelerators(), row["hardware"])
    layout = parallelism(row["parallelism"])
    why = None
    if model is None:
        why = f"model {row['model']!r} is not in the catalog"
    elif hw is None:
        why = f"hardware {row['hardware']!r} is not in the catalog"
    elif row["precision"].lower() not in MODELLED_PRECISIONS:
        why = f"precision {row['precision']} is not modelled"
    elif layout is None:
        why = (f"parallelism {row['parallelism']} is not yet modelled (tensor, expert and "
               "attention-data parallelism are; pipeline parallelism is not)")
    elif layout[1] > 1 and not model.is_moe:
        why = f"attention data parallelism serves a mixture of experts; {model.key} is dense"
    return (model.key if model else None, hw.key if hw else None, layout or (1, 1, 1), why)


def requests_for(output_tokens: int) -> int:
    return next(n for limit, n in REQUESTS_BY_OUTPUT if limit is None or output_tokens <= limit)


def saturated_run(model: str, hardware: str, layout: tuple[int, int, int], prompt: int,
                  output: int, requests: int, engine: str,
                  options: dict | None = None) -> ServingRun:
    """Every request queued at once with fixed lengths (nothing measured per request): a
    microsecond apart, so that the trace has a span and keeps its order. `layout`: (tp, dp,
    ep) of the one replica."""
    tp, dp, ep = layout
    nan = np.full(requests, np.nan)
    return ServingRun(f"{model} {hardware} tp{tp} dp{dp} ep{ep} {prompt}/{output}", "", model,
                      hardware, tp, 1, engine, dict(options or {}), None,
                      np.arange(requests) * 1e-6, np.full(requests, prompt),
                      np.full(requests, output), nan, nan, nan, ranks=dp, ep=ep)


def throughput(path: Path, engine: str, options: dict | None = None,
               profile: str | None = None, workers: int | None = None,
               outputs: tuple[int, ...] | None = None) -> dict:
    """Each modelled row run as the saturated workload it describes (rows in parallel over
    `workers` processes, default every CPU; only those of `outputs` output tokens if given),
    the rest listed with why."""
    jobs: list[tuple] = []
    skipped: list[dict] = []
    for row in _throughput_rows(path):
        if outputs is not None and int(row["output_tokens"]) not in outputs:
            continue
        model, hw, layout, why = _deployment(row)
        label = f"{row['model']} {row['precision']} {row['hardware']} {row['parallelism']} " \
                f"{row['input_tokens']}/{row['output_tokens']}"
        if why:
            skipped.append({"row": label, "why": why})
            continue
        jobs.append((label, row, model, hw, layout, engine, options, profile))
    out = parallel.map_jobs(_row_result, jobs, workers or os.cpu_count() or 1)
    return {"kind": "throughput", "engine": engine, "rows": out, "not_modelled": skipped,
            "mape": _mape(r for r in out if not r["experimental_moe"]),
            "experimental_moe_mape": _mape(r for r in out if r["experimental_moe"]),
            "all_mape": _mape(out), "by_model": by_model(out),
            "fit_outputs_mape": _mape(r for r in out if r["output_tokens"] in FIT_OUTPUTS),
            "other_outputs_mape": _mape(r for r in out
                                        if r["output_tokens"] not in FIT_OUTPUTS)}


def _row_result(job: tuple) -> dict:
    """One saturated-throughput row: measured against simulated output tokens/s per GPU."""
    label, row, model, hw, layout, engine, options, profile = job
    prompt, output = int(row["input_tokens"]), int(row["output_tokens"])
    n = int(row.get("requests") or requests_for(output))
    run = saturated_run(model, hw, layout, prompt, output, n, engine, options)
    sim = servingcheck.simulate(run, engine, options, profile,
                                precision=row["precision"].lower())
    makespan = float(np.nanmax(sim["latency_s"]))
    predicted = n * output / makespan / (layout[0] * layout[1])
    measured = float(row["value"])
    return {"row": label, "model": row["model"], "output_tokens": output, "requests": n,
            "measured": measured, "predicted": predicted,
            "error": (predicted - measured) / measured,
            "experimental_moe": catalog.model(model).is_moe}


def _mape(rows) -> float | None:
    errors = [abs(float(r["error"])) for r in rows]
    return float(np.mean(errors)) if errors else None


def by_model(rows: list[dict]) -> list[dict]:
    """Rows per model (as the table names it): count, MAPE, worst error."""
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        errors = [float(r["error"]) for r in rows if r["model"] == name]
        out.append({"model": name, "n": len(errors), "mape": float(np.mean(np.abs(errors))),
                    "worst": max(errors, key=abs)})
    return out


def shipped_throughput() -> Path:
    """TensorRT-LLM's saturated-throughput table, as shipped."""
    from importlib import resources
    return Path(str(resources.files("sim").joinpath("data", "measurements",
                                                    "trtllm_perf_overview.csv")))


# the output lengths a joint (dense and mixture-of-experts) fit uses: 1K/1K and 1K/8K; the
# 1,024/1,024 and 1,024/32,768 rows are left out of it (docs/accuracy.md)
FIT_OUTPUTS = (1000, 8192)


def fit_rows(rows: list[dict], joint: bool) -> list[dict]:
    """The rows a fit uses: the dense ones, or (`joint`) every one at FIT_OUTPUTS."""
    if joint:
        return [r for r in rows if r["output_tokens"] in FIT_OUTPUTS]
    return [r for r in rows if not r["experimental_moe"]]


def throughput_residuals(path: Path, engine: str, profile: str,
                         joint: bool = False) -> list[float]:
    """log(predicted / measured) of the rows a fit uses (`fit_rows`)."""
    rows = throughput(path, engine, profile=profile,
                      outputs=FIT_OUTPUTS if joint else None)["rows"]
    return [float(np.log(r["predicted"] / r["measured"])) for r in fit_rows(rows, joint)]


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
