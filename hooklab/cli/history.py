"""`hooklab events` and `hooklab requests`: the stored history as a table, JSON, CSV or Parquet."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hooklab.cli.base import Context, Options, Parser
from hooklab.cli.console import CommandError, Progress, UsageError, render_table
from hooklab.commands import EVENTS, REQUESTS, history_filter
from hooklab.store.values import is_missing, json_text

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMATS = ("table", "json", "csv", "parquet")
CHUNK_ROWS = 5_000


def events(context: Context) -> int:
    return history(context, "events")


def requests(context: Context) -> int:
    return history(context, "requests")


def history(context: Context, kind: str) -> int:
    context.reject_remote()
    args = context.args
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise CommandError("Reading the history needs pyarrow: pip install pyarrow") from None
    where = history_filter(args, failed=True if args.failed else None)
    fmt = args.output or _format_of(args.file)
    if fmt == "table":
        if args.file is not None:
            raise UsageError("a table is for the terminal; choose -o json, csv or parquet")
        workspace = context.workspace(missing="refuse")
        read = workspace.events if kind == "events" else workspace.requests
        headers, rows, wrap = SUMMARIES[kind](read(where, limit=args.limit))
        context.print(render_table(headers, rows, wrap=wrap, truncate=True))
        return 0
    if fmt == "parquet":
        _check_parquet_target(args.file)
    _check_writable(args.file)  # before the read starts
    # Read and written a batch at a time: memory stays flat however long the history.
    count, batches = context.workspace(missing="refuse").history_batches(
        kind, where, limit=args.limit
    )
    export_batches(count, batches, fmt, args.file, label=f"Exporting {kind}")
    return 0


FILE_FORMATS = ("json", "csv", "parquet")


def _format_of(path: Path | None) -> str:
    """The format a `--file` path's suffix picks (a table without one); refuses a suffix
    that names no format, in one line that says which suffixes do."""
    if path is None:
        return "table"
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FILE_FORMATS:
        return suffix
    what = "the name has no suffix"
    if path.suffix:
        what = f"{path.suffix} is not a suffix hooklab writes"
    raise UsageError(
        f"--file {path}: {what}; name the file .json, .csv or .parquet, "
        "or choose the format with -o json, csv or parquet"
    )


def _time(value: Any) -> str:
    return "" if is_missing(value) else value.strftime("%Y-%m-%d %H:%M:%S")


def _text(*values: Any) -> str:
    """The first value that is present, as text; missing values (None, NaN) read as ""."""
    for value in values:
        if not is_missing(value) and value != "":
            return str(value)
    return ""


Summary = tuple[list[str], list[list[str]], list[int]]


def _events_summary(frame: pd.DataFrame) -> Summary:
    rows = [
        [
            _time(row["received"]),
            _text(row["event"]),
            _text(row["resource.id"]),
            _text(row["webhook_name"], row["webhook_id"]),
            _text(row["error"]),
        ]
        for row in frame.to_dict("records")
    ]
    return ["received (UTC)", "event", "resource id", "webhook", "error"], rows, [1, 2, 4]


def _requests_summary(frame: pd.DataFrame) -> Summary:
    rows = [
        [
            _time(row["received"]),
            _text(row["webhook_name"], row["webhook_id"]),
            _text(row["method"]),
            _text(row["content_type"]),
            _text(row["size"]),
            _text(row["status"]),
            _text(row["error"]),
        ]
        for row in frame.to_dict("records")
    ]
    headers = ["received (UTC)", "webhook", "method", "content type", "size", "status", "error"]
    # The webhook stays whole: a deleted one's is its id, which its history is read by.
    return headers, rows, [3, 6]


SUMMARIES = {"events": _events_summary, "requests": _requests_summary}


def export(frame: pd.DataFrame, fmt: str, path: Path | None, *, label: str) -> None:
    """Write a frame as json (an array of objects), csv or parquet, to a file or stdout.

    Nested values (payloads, headers, related resources) stay nested in JSON; in CSV and
    Parquet they are JSON text, since their shape changes from row to row.
    """
    chunks = (frame.iloc[start : start + CHUNK_ROWS] for start in range(0, len(frame), CHUNK_ROWS))
    _check_writable(path)
    if fmt == "parquet":
        import pyarrow as pa

        _check_parquet_target(path)
        schema = pa.Table.from_pandas(_as_text(frame.iloc[:0], keep_times=True)).schema
        _write_parquet(_arrow_chunks(chunks), schema, path, len(frame), label=label)
    else:
        _write_text(chunks, fmt, path, len(frame), frame, label=label)


def export_batches(
    count: int, batches: pa.RecordBatchReader, fmt: str, path: Path | None, *, label: str
) -> None:
    """`export` of a history read in Arrow batches (`Workspace.history_batches`), one at a
    time: Parquet takes them as they are, JSON and CSV a frame of each."""
    if fmt == "parquet":
        _write_parquet(batches, batches.schema, path, count, label=label)
        return
    import pyarrow as pa

    from hooklab.store.frames import frame_of

    empty = frame_of(batches.schema.empty_table())
    frames = (frame_of(pa.Table.from_batches([batch])) for batch in batches)
    _write_text(frames, fmt, path, count, empty, label=label)


def _write_text(
    frames: Iterable[pd.DataFrame],
    fmt: str,
    path: Path | None,
    count: int,
    empty: pd.DataFrame,
    *,
    label: str,
) -> None:
    stream: IO[str]
    with (
        _opened(path) if path else _unclosed(sys.stdout) as stream,
        Progress(label, total=count) as progress,
    ):
        if fmt == "json":
            _write_json(frames, stream, progress)
        else:
            _write_csv(frames, stream, progress, empty)


def _write_json(frames: Iterable[pd.DataFrame], stream: IO[str], progress: Progress) -> None:
    stream.write("[")
    written = 0
    for frame in frames:
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = _iso_times(frame.iloc[start : start + CHUNK_ROWS]).astype(object)
            records = chunk.where(chunk.notna(), None).to_dict("records")
            stream.write(",\n" if written else "\n")
            stream.write(",\n".join(map(json.dumps, records)))
            written += len(chunk)
            progress.advance(len(chunk))
    stream.write("\n]\n" if written else "]\n")


def _write_csv(
    frames: Iterable[pd.DataFrame], stream: IO[str], progress: Progress, empty: pd.DataFrame
) -> None:
    written = 0
    for frame in frames:
        flat = _as_text(frame)
        for start in range(0, len(flat), CHUNK_ROWS):
            chunk = flat.iloc[start : start + CHUNK_ROWS]
            chunk.to_csv(stream, index=False, header=written == 0)
            written += len(chunk)
            progress.advance(len(chunk))
    if not written:
        _as_text(empty).to_csv(stream, index=False)


def _check_parquet_target(path: Path | None) -> None:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise CommandError("Parquet export needs pyarrow: pip install pyarrow") from None
    if path is None and sys.stdout.isatty():
        raise UsageError("Parquet is binary: give --file PATH, or redirect stdout to a file")


def _check_writable(path: Path | None) -> None:
    """Refuse, in one line, a `--file` that cannot be written, before anything is read."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--file {path}: that is a folder; name a file in it")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"--file {path}: there is no folder {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--file {path}: permission denied")


def _opened(path: Path) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise _unwritable(path, error) from None


def _unwritable(path: Path | None, error: OSError) -> UsageError:
    return UsageError(f"--file {path}: cannot write it: {error.strerror or error}")


def _arrow_chunks(frames: Iterable[pd.DataFrame]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    for frame in frames:
        yield from pa.Table.from_pandas(
            _as_text(frame, keep_times=True), preserve_index=False
        ).to_batches()


def _write_parquet(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    path: Path | None,
    count: int,
    *,
    label: str,
) -> None:
    import pyarrow.parquet as pq

    target: Any = str(path) if path is not None else sys.stdout.buffer
    try:
        writer = pq.ParquetWriter(target, schema)
    except OSError as error:
        raise _unwritable(path, error) from None
    with writer, Progress(label, total=count) as progress:
        for batch in batches:
            writer.write_batch(batch)
            progress.advance(batch.num_rows)
    if path is None:
        sys.stdout.buffer.flush()


def _as_text(frame: pd.DataFrame, *, keep_times: bool = False) -> pd.DataFrame:
    """Nested cells as JSON text, and (unless kept) times as ISO 8601 text."""
    flat = frame if keep_times else _iso_times(frame)
    flat = flat.copy()
    for name in flat.columns:
        column = flat[name]
        stored = _stored_json(column)
        if stored is not None:
            flat[name] = stored
        elif column.dtype == object and any(isinstance(v, (dict, list)) for v in column):
            flat[name] = [None if v is None else json_text(v) for v in column]
    return flat


def _stored_json(column: pd.Series) -> list[str | None] | None:
    """The JSON text of a column that frames keep as text, without re-encoding; headers,
    kept as the pairs received, as the object a frame's cell reads as."""
    from hooklab.store.jsoncolumn import HeaderPairs, JSONArray

    if isinstance(column.array, HeaderPairs):
        return [None if value is None else json_text(value) for value in column.array]
    if not isinstance(column.array, JSONArray):
        return None
    texts: list[str | None] = column.array.texts.to_pylist()
    return texts


def _iso_times(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose time columns are ISO 8601 text (None where a time is missing)."""
    import pandas as pd

    times = [n for n in frame.columns if isinstance(frame[n].dtype, pd.DatetimeTZDtype)]
    iso: dict[str, Any] = {
        n: [None if t is pd.NaT else t.isoformat() for t in frame[n]] for n in times
    }
    return frame.assign(**iso)


class _unclosed:
    """Use stdout in a `with` without closing it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __enter__(self) -> IO[str]:
        return self.stream

    def __exit__(self, *exc_info: object) -> None:
        self.stream.flush()


def register(root: Parser, commands: argparse._SubParsersAction[Parser]) -> None:
    for kind, operation, handler, summary, example in (
        (
            "events",
            EVENTS,
            events,
            "List or export stored events, failures included.",
            "hooklab events --webhook models --since 1h\n"
            "hooklab events --since 2026-05-01 -o csv > events.csv\n"
            "hooklab events --file events.parquet",
        ),
        (
            "requests",
            REQUESTS,
            requests,
            "List or export captured requests (Authorization is never stored).",
            "hooklab requests --webhook models --since 30m\n"
            "hooklab requests -o json --file requests.json",
        ),
    ):
        parser = root.command(
            commands,
            kind,
            handler,
            summary=summary,
            example=example,
            parents=[Options.local],
        )
        parser.add_argument(
            "--webhook", metavar="NAME", help="only this webhook (name or id, a deleted one's id)"
        )
        operation.add_arguments(parser)
        failed = "only failure events" if kind == "events" else "only failed requests"
        parser.add_argument("--failed", action="store_true", help=failed)
        parser.add_argument(
            "-o",
            "--output",
            choices=FORMATS,
            default=None,
            help="table (default on stdout), json, csv or parquet",
        )
        parser.add_argument(
            "--file",
            type=Path,
            metavar="PATH",
            help=(
                "write to PATH, not stdout; without -o its suffix (.json, .csv, .parquet) "
                "picks the format"
            ),
        )
