"""The parsing process of an events import: reads the file, checks each line as the events API
checks an item, and hands the importing process each chunk of lines ready to write.

It runs in a process of its own (`ParserProcess`, spawned: the importing process has threads),
so parsing, about as costly as writing, takes the second core while the first writes. What it
sends is compact, not parsed events (pickling those back cost more than parsing them,
docs/performance.md): the usage events of a chunk, which carry no state, encoded for the
database to stage as they are (`customers/usage_bulk.py`), their customers' provider ids, the raw
bytes of the few lines that carry state (the importing process applies them as the events API
would), the lines refused with their reason, and where in the file the chunk lies, so that a
chunk the database refuses can be read again and applied line by line.
"""

import itertools
import multiprocessing
import queue as queues
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, BinaryIO

from churnsaver.backend.core.accepted_json import loads_accepted
from churnsaver.backend.core.bulk import json_text
from churnsaver.backend.core.ids import ordered_uuid_hexes
from churnsaver.backend.customers.timeline import stored_key
from churnsaver.backend.customers.usage_bulk import UsageRow, carries_state, encode_usage, own_properties, usage_row
from churnsaver.backend.ingest.events_api import checked_events

CHUNKS_AHEAD = 2  # parsed chunks waiting for the writer: the parser runs ahead, memory stays flat
POLL_SECONDS = 1.0  # how often a wait for the next chunk checks that the parser still runs


@dataclass(frozen=True, slots=True)
class ParsedChunk:
    """A chunk of the file's lines, parsed and checked."""

    first_line: int  # the number of its first line
    start: int  # where it starts in the file, in bytes
    end: int  # where it ends
    lines: int  # non-blank lines in it
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    duplicates: int = 0  # lines whose messageId an earlier line of the chunk has
    stateful: list[tuple[int, bytes]] = field(default_factory=list)  # (line, its bytes): events with state
    provider_ids: list[str] = field(default_factory=list)  # the usage events' customers
    usage_rows: int = 0
    usage: bytes = b""  # the usage events, encoded by `encode_usage`


class ParserFailed(RuntimeError):
    """The parsing process could not read the file, or ended without saying why."""


def event_lines(file: BinaryIO, max_bytes: int, first_line: int = 1) -> Iterator[tuple[int, bytes | None]]:
    """(line number, its bytes) of every non-blank line; None for a line over `max_bytes`, which
    is skipped without being held in memory."""
    for number in itertools.count(first_line):
        data = file.readline(max_bytes + 1)
        if not data:
            return
        if len(data) > max_bytes and not data.endswith(b"\n"):
            while data and not data.endswith(b"\n"):
                data = file.readline(max_bytes)
            yield number, None
        elif data.strip():
            yield number, data


def parse_chunk(
    lines: list[tuple[int, bytes | None]], received_at: str, max_bytes: int
) -> tuple[list[tuple[int, str]], int, list[tuple[int, bytes]], list[UsageRow]]:
    """A chunk's rejected lines, in-chunk duplicates, lines carrying state, and usage rows."""
    rejected: list[tuple[int, str]] = []
    stateful: list[tuple[int, bytes]] = []
    rows: list[UsageRow] = []
    seen: set[str] = set()
    duplicates = 0
    ids = ordered_uuid_hexes(len(lines))
    for line, data in lines:
        try:
            if data is None:
                raise ValueError(f"the line is longer than {max_bytes} bytes")
            events = checked_events(loads_accepted(data), received_at, acceptable=True)
        except ValueError as error:
            rejected.append((line, str(error)))
            continue
        keys = {stored_key(event.dedupe_key) for event in events}
        if not seen.isdisjoint(keys):  # the first line with a messageId wins, as in the events API
            duplicates += 1
            continue
        seen |= keys
        if len(events) != 1 or carries_state(events[0]):
            stateful.append((line, data))
            continue
        properties = own_properties(events[0])
        rows.append(usage_row(ids[len(rows)], events[0], json_text(properties) if properties else "{}"))
    return rejected, duplicates, stateful, rows


def parsed_chunks(
    path: str, chunk_lines: int, max_bytes: int, received_at: str, dialect_name: str
) -> Generator[ParsedChunk, None, None]:
    """The file's chunks of `chunk_lines` lines, parsed, their usage rows encoded for the dialect."""
    with open(path, "rb") as file:
        start, next_line = 0, 1
        lines = event_lines(file, max_bytes)
        while chunk := list(itertools.islice(lines, chunk_lines)):
            rejected, duplicates, stateful, rows = parse_chunk(chunk, received_at, max_bytes)
            end = file.tell()
            yield ParsedChunk(
                first_line=next_line,
                start=start,
                end=end,
                lines=len(chunk),
                rejected=rejected,
                duplicates=duplicates,
                stateful=stateful,
                provider_ids=sorted({row[1] for row in rows}),
                usage_rows=len(rows),
                usage=encode_usage(dialect_name, rows),
            )
            start, next_line = end, chunk[-1][0] + 1


def parse_events_file(
    path: str, chunk_lines: int, max_bytes: int, received_at: str, dialect_name: str, chunks: Any
) -> None:
    """The parsing process's work: every parsed chunk onto the `chunks` queue, then None; a str
    instead if the file cannot be read."""
    try:
        for chunk in parsed_chunks(path, chunk_lines, max_bytes, received_at, dialect_name):
            chunks.put(chunk)
    except OSError as error:
        chunks.put(_unreadable(path, error))
        return
    chunks.put(None)


def _unreadable(path: str, error: OSError) -> str:
    return f"{path}: {error.strerror or error}"


def reread_chunk(path: Path, chunk: ParsedChunk, max_bytes: int) -> list[tuple[int, bytes | None]]:
    """The lines of `chunk`, read again from the file."""
    with path.open("rb") as file:
        file.seek(chunk.start)
        return list(itertools.islice(event_lines(file, max_bytes, chunk.first_line), chunk.lines))


class InProcessParser:
    """The chunks of a small file, parsed in this process when asked for: starting a process
    (about a second, its imports) would cost more than parsing the whole file."""

    def __init__(self, path: Path, chunk_lines: int, max_bytes: int, received_at: str, dialect_name: str) -> None:
        self._path = str(path)
        self._chunks = parsed_chunks(self._path, chunk_lines, max_bytes, received_at, dialect_name)

    def __enter__(self) -> "InProcessParser":
        return self

    def __exit__(self, *_exc: object) -> None:
        self._chunks.close()

    def next_chunk(self) -> ParsedChunk | None:
        """The next parsed chunk, None after the last (parses it: call it in a thread)."""
        try:
            return next(self._chunks, None)
        except OSError as error:
            raise ParserFailed(_unreadable(self._path, error)) from None


class ParserProcess:
    """The parsing process of one import, started on entering and stopped on leaving."""

    def __init__(self, path: Path, chunk_lines: int, max_bytes: int, received_at: str, dialect_name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._chunks: Any = context.Queue(maxsize=CHUNKS_AHEAD)
        self._process: BaseProcess = context.Process(
            target=parse_events_file,
            args=(str(path), chunk_lines, max_bytes, received_at, dialect_name, self._chunks),
            name="churnsaver-import-parser",
            daemon=True,
        )

    def __enter__(self) -> "ParserProcess":
        self._process.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process.is_alive():
            self._process.terminate()  # the import failed or was cancelled: the parser is not needed
        self._process.join()
        self._chunks.close()

    def next_chunk(self) -> ParsedChunk | None:
        """The next parsed chunk, None after the last (blocking: call it in a thread)."""
        while True:
            try:
                chunk = self._chunks.get(timeout=POLL_SECONDS)
            except queues.Empty:
                if not self._process.is_alive():
                    raise ParserFailed("the parsing process ended unexpectedly") from None
                continue
            if isinstance(chunk, str):
                raise ParserFailed(chunk)
            return chunk
