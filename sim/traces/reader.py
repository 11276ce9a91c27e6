"""Streaming trace reader: any known format -> canonical Arrow record batches, validated.

Memory stays bounded: CSV and JSON lines are read block by block, Parquet by row groups.
Problems name the file and the line (CSV/JSON lines, header = line 1 for CSV) or the row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from sim.errors import Problem, SearchsimError
from sim.traces.formats import Format

SCHEMA = pa.schema([("time_s", pa.float64()), ("prompt_tokens", pa.int64()),
                    ("output_tokens", pa.int64()), ("key", pa.int64())])
BLOCK_BYTES = 1 << 22
UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
MAX_TOKENS = 2**31 - 1
MAX_SECONDS = 1e10  # about 317 years: anything larger is a unit mistake
# Numbers read as seconds only because no unit was given: a span longer than this (8 days,
# a week-long trace with room to spare) is more likely milliseconds, so the unit is required
MAX_AUTO_SPAN_S = 8 * 86400.0


@dataclass
class ReadState:
    """What a streaming pass carries from one batch to the next."""

    path: Path
    fmt: Format
    rows: int = 0  # data rows already read
    t0: float | None = None  # absolute time of the first row (seconds)
    last: float = -np.inf
    numeric_time: bool | None = None
    origin_ns: int | None = None  # wall-clock traces: the first timestamp, kept exact
    first_number: float | None = None  # numeric traces: the first timestamp as written
    warnings: list[str] = field(default_factory=list)

    def where(self, index: int) -> str:
        """`file:line N` of the data row `index` of the current batch."""
        row = self.rows + index + 1
        if self.fmt.file == "parquet":
            return f"{self.path}:row {row}"
        return f"{self.path}:line {row + (1 if self.fmt.file == 'csv' else 0)}"


def query_key(text: str) -> int:
    """A stable 64-bit key for a query string (the same in every process and run)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(),
                          "little", signed=True)


def _sniff_numeric_time(path: Path, fmt: Format) -> bool:
    if fmt.time_unit in UNIT_SECONDS:
        return True
    if fmt.time_unit == "datetime":
        return False
    if fmt.file == "parquet":
        t = pq.read_schema(path).field(fmt.time).type
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
        second = f.readline()
    if fmt.file == "jsonl":
        import json
        try:
            return isinstance(json.loads(first).get(fmt.time), int | float)
        except (json.JSONDecodeError, AttributeError):
            return True
    cols = [c.strip() for c in first.rstrip("\r\n").split(",")]
    values = second.rstrip("\r\n").split(",")
    try:
        float(values[cols.index(fmt.time)])
        return True
    except (ValueError, IndexError):
        return False


def _raw(path: Path, fmt: Format, numeric_time: bool) -> Iterator[pa.RecordBatch]:
    if fmt.file == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=65536,
                                                     columns=fmt.read_columns)
        return
    types = {c: pa.float64() for c in (fmt.prompt, fmt.output) if c}
    types[fmt.time] = pa.float64() if numeric_time else pa.string()
    if fmt.query:
        types[fmt.query] = pa.string()
    if fmt.query_id:
        types[fmt.query_id] = pa.int64()
    if fmt.blocks:
        types[fmt.blocks] = pa.list_(pa.int64())
    if fmt.file == "jsonl":
        schema = pa.schema([(c, types[c]) for c in fmt.read_columns])
        reader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=BLOCK_BYTES),
                                  parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                                    unexpected_field_behavior=
                                                                    "ignore"))
        yield from reader
    else:
        yield from _csv_blocks(path, pacsv.ConvertOptions(include_columns=fmt.read_columns,
                                                          column_types=types))


def _csv_blocks(path: Path, convert: pacsv.ConvertOptions) -> Iterator[pa.RecordBatch]:
    """CSV in blocks of whole lines, each parsed on its own: memory is one block, whatever
    the file's size (Arrow's own streaming reader was seen to grow with the file)."""
    read = pacsv.ReadOptions(use_threads=False)
    with open(path, "rb") as f:
        head = f.readline()
        rest = b""
        while True:
            data = f.read(BLOCK_BYTES)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest, block = data[cut:], data[:cut]
            if block:
                yield from pacsv.read_csv(pa.py_buffer(head + block), read_options=read,
                                          convert_options=convert).to_batches()
        if rest.strip():
            yield from pacsv.read_csv(pa.py_buffer(head + rest), read_options=read,
                                      convert_options=convert).to_batches()


def _seconds(col: pa.ChunkedArray | pa.Array, fmt: Format, st: ReadState) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        ns = col.cast(pa.timestamp("ns")).cast(pa.int64())
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        ns = _parse_datetime(col, st).cast(pa.int64())
    else:
        scale = UNIT_SECONDS.get(fmt.time_unit, 1.0)
        values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)
        if fmt.time_unit == "auto":
            _check_auto_span(values, st)
        return values * scale
    values = ns.to_numpy(zero_copy_only=False)
    if st.origin_ns is None and len(values):
        st.origin_ns = int(values.min())
    # subtract in integer nanoseconds first: epoch seconds in float64 would lose precision
    return (values - st.origin_ns).astype(np.float64) / 1e9


def _check_auto_span(values: np.ndarray, st: ReadState) -> None:
    """Numbers with no stated unit are seconds; refuse a span too long to be meant."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return
    if st.first_number is None:
        st.first_number = float(finite[0])
    span = float(finite.max()) - st.first_number
    if span > MAX_AUTO_SPAN_S:
        raise SearchsimError(Problem(
            f"{st.path} ({st.fmt.time})", f"{span:.4g}", f"timestamps in a stated unit: read "
            f"as seconds they span {span / 86400:.1f} days ({span / 3600e3:.2f} hours if "
            "milliseconds); set time_unit (--time-unit) to s, ms or us"))


def _parse_datetime(col, st: ReadState):
    for target in (pa.timestamp("ns"), pa.timestamp("ns", "UTC")):
        try:
            return pc.cast(col, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    for i, v in enumerate(col.to_pylist()):
        if not _parses(v):
            raise SearchsimError(Problem(st.where(i), v, "a timestamp such as "
                                         "2023-11-16 18:17:03.97")) from None
    raise SearchsimError(Problem(str(st.path), "", "parsable timestamps"))


def _parses(value) -> bool:
    for target in (pa.timestamp("ns"), pa.timestamp("ns", "UTC")):
        try:
            pc.cast(pa.array([value], pa.string()), target)
            return True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
            continue
    return False


def _tokens(batch: pa.RecordBatch, name: str | None, st: ReadState) -> pa.Array:
    if name is None:
        return pa.nulls(batch.num_rows, pa.int64())
    x = np.asarray(batch.column(name).to_numpy(zero_copy_only=False), dtype=float)
    bad = ~((x > 0) & (x <= MAX_TOKENS)) | (x != np.floor(x))
    if bad.any():
        i = int(np.argmax(bad))
        raise SearchsimError(Problem(f"{st.where(i)} ({name})", _plain(x[i]),
                                     "a positive whole number of tokens" +
                                     (f" (at most {MAX_TOKENS:,})" if x[i] > MAX_TOKENS else "")))
    return pa.array(x.astype(np.int64))


def _plain(v: float):
    v = float(v)
    return v if not np.isfinite(v) or v != int(v) else int(v)


def _keys(batch: pa.RecordBatch, fmt: Format, st: ReadState) -> pa.Array:
    if fmt.query_id:
        col = batch.column(fmt.query_id)
        if col.null_count:
            i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
            raise SearchsimError(Problem(f"{st.where(i)} ({fmt.query_id})", None, "a query id"))
        return col.cast(pa.int64())
    if fmt.query:
        texts = batch.column(fmt.query).to_pylist()
        return pa.array([None if t is None else query_key(t) for t in texts], pa.int64())
    return pa.nulls(batch.num_rows, pa.int64())


def _times(batch: pa.RecordBatch, fmt: Format, st: ReadState, sort: bool) -> np.ndarray:
    col = batch.column(fmt.time)
    t = _seconds(col, fmt, st)
    bad = ~np.isfinite(t)
    if bad.any():
        i = int(np.argmax(bad))
        raise SearchsimError(Problem(f"{st.where(i)} ({fmt.time})", col[i].as_py(),
                                     "a finite timestamp"))
    huge = np.abs(t) > MAX_SECONDS
    if huge.any():
        i = int(np.argmax(huge))
        raise SearchsimError(Problem(f"{st.where(i)} ({fmt.time})", col[i].as_py(),
                                     f"a time within {MAX_SECONDS:.0e} s (is the unit right? "
                                     "see --time-unit)"))
    if st.t0 is None and len(t):
        st.t0 = 0.0 if not fmt.rebase else float(t[0]) if not sort else float(t.min())
    rel = t - st.t0
    if not sort:
        prev = np.concatenate([[st.last], rel[:-1]])
        back = rel < prev
        if back.any():
            i = int(np.argmax(back))
            raise SearchsimError(Problem(
                f"{st.where(i)} ({fmt.time})", _plain(float(t[i])), "", message=(
                    f"timestamp goes backwards ({rel[i]:.6f} s after the start, the row "
                    f"before was at {prev[i]:.6f} s); sort the file or pass --sort")))
    if len(rel):
        st.last = float(rel[-1])
    return rel


def canonical(batch: pa.RecordBatch, fmt: Format, st: ReadState, sort: bool = False
              ) -> pa.RecordBatch:
    cols = [pa.array(_times(batch, fmt, st, sort)), _tokens(batch, fmt.prompt, st),
            _tokens(batch, fmt.output, st), _keys(batch, fmt, st)]
    schema = SCHEMA
    if fmt.blocks:  # the prompts' block hashes, for prefix caching
        cols.append(batch.column(fmt.blocks))
        schema = SCHEMA.append(pa.field("blocks", pa.list_(pa.int64())))
    out = pa.record_batch(cols, schema=schema)
    st.rows += batch.num_rows
    return out


_PARSE = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+)")
_CONVERT = re.compile(r"In CSV column #(\d+): Row #(\d+): CSV conversion error to \w+: "
                      r"invalid value '(.*)'")
_JSON = re.compile(r"JSON parse error: (.*) in row (\d+)")


def _translate(exc: Exception, st: ReadState) -> SearchsimError:
    """Arrow's parse errors, as the file's line and the column a user can find and fix."""
    text = str(exc).splitlines()[0]
    if "UTF8" in text or "utf8" in text or "UTF-8" in text:
        return SearchsimError(Problem(str(st.path), "", "", message="not UTF-8 text (re-encode "
                                      "it as UTF-8)"))
    if m := _PARSE.search(text):  # rows counted from 1 at the block's header
        line = st.rows + int(m[1])
        return SearchsimError(Problem(f"{st.path}:line {line}", "", "", message=(
            f"truncated or malformed row: {m[3]} field(s), expected {m[2]}")))
    if m := _CONVERT.search(text):  # rows counted from 1 at the header
        from sim.traces.formats import header
        name = header(st.path)[int(m[1])]
        return SearchsimError(Problem(f"{st.path}:line {st.rows + int(m[2])} ({name})", m[3],
                                      "a number"))
    if m := _JSON.search(text):  # rows counted from 0
        return SearchsimError(Problem(f"{st.path}:line {st.rows + int(m[2]) + 1}", "", "",
                                      message=f"not valid JSON ({m[1].rstrip('.')})"))
    return SearchsimError(Problem(str(st.path), "", "", message=f"unreadable after data row "
                                  f"{st.rows}: {text}"))


def read_batches(path: str | Path, fmt: Format, sort: bool = False,
                 state: ReadState | None = None) -> Iterator[pa.RecordBatch]:
    """Canonical batches in file order; with `sort`, the whole file is read and sorted."""
    st = state if state is not None else ReadState(Path(path), fmt)
    st.numeric_time = _sniff_numeric_time(st.path, fmt)
    if sort:
        yield from _sorted(st, fmt)
        return
    raw = _raw(st.path, fmt, bool(st.numeric_time))
    while True:
        try:
            batch = next(raw)
        except StopIteration:
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
            raise _translate(exc, st) from None
        if batch.num_rows:
            yield canonical(batch, fmt, st)
    if st.rows == 0:
        raise SearchsimError(Problem(str(st.path), "", "", message="no requests: the file has "
                                     "a header but no data rows"))


def _sorted(st: ReadState, fmt: Format) -> Iterator[pa.RecordBatch]:
    try:
        table = pa.Table.from_batches(list(_raw(st.path, fmt, bool(st.numeric_time))))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise _translate(exc, st) from None
    if table.num_rows == 0:
        raise SearchsimError(Problem(str(st.path), "", "", message="no requests: the file has "
                                     "a header but no data rows"))
    batch = canonical(table.combine_chunks().to_batches()[0], fmt, st, sort=True)
    t = batch.column(0).to_numpy()
    moved = int((np.diff(t) < 0).sum())
    if moved:
        st.warnings.append(f"{st.path}: {moved} out-of-order row(s) sorted by time")
    order = np.argsort(t, kind="stable")
    yield batch.take(pa.array(order))
