"""Known trace formats, a generic column mapping, and detection by header."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from sim.errors import Problem, SearchsimError


@dataclass(frozen=True)
class Format:
    """Where a format keeps each canonical column, and in what units.

    time_unit: "datetime" (wall-clock strings), "s" or "ms" (numbers), or "auto" (strings are
    wall-clock, numbers are seconds). query: a column of query strings (hashed to a key);
    query_id: a column of integer ids used as keys directly.
    """

    name: str
    file: str  # csv, jsonl or parquet
    time: str
    time_unit: str = "auto"
    prompt: str | None = None
    output: str | None = None
    query: str | None = None
    query_id: str | None = None
    rebase: bool = True  # shift times so the first request is at 0 (canonical files are)
    # a column of each prompt's block hashes (prefix caching replays them), and the tokens
    # each block stands for
    blocks: str | None = None
    block_tokens: int | None = None

    @property
    def columns(self) -> list[str]:
        """The columns the format needs."""
        return [c for c in (self.time, self.prompt, self.output, self.query, self.query_id)
                if c is not None]

    @property
    def read_columns(self) -> list[str]:
        """The columns read: those it needs, and its block hashes where the file has them."""
        return self.columns + ([self.blocks] if self.blocks else [])

    @property
    def kind(self) -> str:
        """`llm` traces drive the LLM stage directly; `query` traces drive the pipeline."""
        return "query" if self.query or self.query_id else "llm"


FORMATS = {
    "azure": Format("azure", "csv", "TIMESTAMP", "datetime", "ContextTokens",
                    "GeneratedTokens"),
    "burstgpt": Format("burstgpt", "csv", "Timestamp", "s", "Request tokens",
                       "Response tokens"),
    "mooncake": Format("mooncake", "jsonl", "timestamp", "ms", "input_length",
                       "output_length", blocks="hash_ids", block_tokens=512),
    "queries": Format("queries", "csv", "timestamp", "auto", query="query"),
    "query_ids": Format("query_ids", "csv", "timestamp", "auto", query_id="query_id"),
    "canonical": Format("canonical", "parquet", "time_s", "s", "prompt_tokens",
                        "output_tokens", query_id="key", rebase=False),
}
SOURCES = {"azure": "Azure/AzurePublicDataset (AzureLLMInferenceTrace_*.csv)",
           "burstgpt": "HPMLL/BurstGPT (BurstGPT_*.csv)",
           "mooncake": "kvcache-ai/Mooncake (mooncake_trace.jsonl)"}


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    return "csv"


def header(path: Path) -> list[str]:
    """Column names: the CSV header, the first JSON object's keys, or the Parquet schema."""
    kind = file_kind(path)
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq  # only Parquet traces need it
            return pq.read_schema(path).names
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise SearchsimError(Problem(str(path), "", "", message=f"not a Parquet file "
                                         f"({exc})")) from None
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except UnicodeDecodeError:
        raise SearchsimError(Problem(str(path), "", "", message="not UTF-8 text (re-encode "
                                     "it as UTF-8)")) from None
    if not first.strip():
        raise SearchsimError(Problem(str(path), "", "", message="empty file: no header row"))
    if kind == "jsonl":
        try:
            return list(json.loads(first))
        except (json.JSONDecodeError, TypeError):
            raise SearchsimError(Problem(f"{path}:1", first.strip()[:60], "a JSON object per "
                                         "line")) from None
    return [c.strip() for c in first.rstrip("\r\n").split(",")]


def _canonical_kind(path: Path, fmt: Format) -> Format:
    """Canonical files record whether they hold an LLM or a query trace."""
    if fmt.name == "canonical" and file_kind(path) == "parquet":
        import pyarrow.parquet as pq
        meta = pq.read_schema(path).metadata or {}
        if meta.get(b"searchsim.kind") == b"llm":
            return replace(fmt, query_id=None)
    return fmt


def detect(path: Path) -> Format:
    names = header(path)
    kind = file_kind(path)
    for fmt in FORMATS.values():
        if (fmt.file == kind or kind == "parquet") and set(fmt.columns) <= set(names):
            return _canonical_kind(path, replace(fmt, file=kind))
    known = "; ".join(f"{f.name}: {', '.join(f.columns)}" for f in FORMATS.values())
    raise SearchsimError(Problem(
        str(path), ", ".join(names)[:120], "", message=f"unknown trace format, columns "
        f"{names!r}; expected one of ({known}), or give --format and a column mapping"))


def mapped(mapping: str | dict, file: str, time_unit: str = "auto") -> Format:
    """A generic format from `time=COL,prompt=COL,output=COL,query=COL,query_id=COL`."""
    if isinstance(mapping, str):
        pairs = [p.split("=", 1) for p in mapping.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise SearchsimError(Problem("mapping", mapping, "time=COL[,prompt=COL,...]"))
        mapping = {k.strip(): v.strip() for k, v in pairs}
    allowed = {"time", "prompt", "output", "query", "query_id"}
    unknown = set(mapping) - allowed
    if unknown or "time" not in mapping:
        raise SearchsimError(Problem("mapping", ",".join(f"{k}={v}" for k, v in mapping.items()),
                                     "time=COL plus any of prompt, output, query, query_id"))
    if time_unit not in ("auto", "datetime", "s", "ms", "us"):
        raise SearchsimError(Problem("time_unit", time_unit, "auto, datetime, s, ms or us"))
    return Format("mapped", file, mapping["time"], time_unit, mapping.get("prompt"),
                  mapping.get("output"), mapping.get("query"), mapping.get("query_id"))


def _with_unit(f: Format, time_unit: str, path: Path | None = None) -> Format:
    """A named or detected format with the time unit the user gave (auto: the format's),
    and without block hashes where the file has none (they are optional)."""
    if path is not None and f.blocks and f.blocks not in header(path):
        f = replace(f, blocks=None)
    return f if time_unit == "auto" else replace(f, time_unit=time_unit)


def resolve(path: Path, fmt: str = "auto", mapping: str | dict | None = None,
            time_unit: str = "auto") -> Format:
    if not path.is_file():
        raise SearchsimError(Problem("trace", str(path), "an existing trace file"))
    if mapping:
        return mapped(mapping, file_kind(path), time_unit)
    if fmt == "auto":
        return _with_unit(detect(path), time_unit, path)
    if fmt not in FORMATS:
        raise SearchsimError(Problem("format", fmt, "one of: auto, " + ", ".join(FORMATS)))
    f = _with_unit(_canonical_kind(path, replace(FORMATS[fmt], file=file_kind(path))),
                   time_unit, path)
    missing = [c for c in f.columns if c not in header(path)]
    if missing:
        raise SearchsimError(Problem(str(path), ", ".join(header(path))[:120], "",
                                     message=f"format {fmt} needs columns {missing!r}, the file "
                                     f"has {header(path)!r}"))
    return f
