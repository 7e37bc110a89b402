"""JSON Lines files as bounded blocks of Arrow strings, with each line's number and byte offset.

The ingest's fast path hands whole blocks to DuckDB; memory holds one block at a time whatever the
file's size. Lines are split with one numpy scan for newlines and wrapped without copying; blank
(whitespace-only) lines are dropped but still counted, so line numbers match an editor's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from eval_pipelines.core.logs.readers import LogParseError

BLOCK_BYTES = 32 * 2**20
_UTF8_BOM = b"\xef\xbb\xbf"
_NEWLINE = 10


@dataclass(frozen=True)
class LineBlock:
    """Lines of one block: `lines` has columns line (string), line_no and offset (int64)."""

    lines: pa.Table

    @property
    def num_rows(self) -> int:
        return self.lines.num_rows


def iter_line_blocks(file: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[LineBlock]:
    """Blocks of whole lines, in file order; LogParseError when the file is unreadable or not UTF-8."""
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise LogParseError(file, None, f"cannot read the file ({exc.strerror or exc})") from exc
    with handle:
        carry = b""
        offset = 0  # byte offset of carry's first byte in the file
        line_no = 1
        first = True
        while True:
            try:
                chunk = handle.read(block_bytes)
            except OSError as exc:
                raise LogParseError(
                    file, None, f"cannot read the file ({exc.strerror or exc})"
                ) from exc
            data = carry + chunk
            if first:
                first = False
                if data.startswith(_UTF8_BOM):
                    data, offset = data[len(_UTF8_BOM) :], len(_UTF8_BOM)
            if not chunk:
                if data:
                    yield _block(file, data + b"\n", offset, line_no)
                return
            end = data.rfind(b"\n") + 1
            if end == 0:
                carry = data
                continue
            whole, carry = data[:end], data[end:]
            block = _block(file, whole, offset, line_no)
            line_no += whole.count(b"\n")
            offset += end
            yield block


def _block(file: Path, data: bytes, offset: int, first_line: int) -> LineBlock:
    """data ends with a newline; every line becomes one string, its newline kept (JSON ignores it).

    Blank lines stay too: they are not JSON, so the exact path skips them as the reader always did."""
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == _NEWLINE)
    starts = np.empty(len(newlines), np.int64)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    buffer = pa.py_buffer(data)
    lines = pa.LargeStringArray.from_buffers(
        len(newlines),
        pa.py_buffer(np.concatenate([[0], newlines + 1]).astype(np.int64)),
        buffer,
    )
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        raise _not_utf8(file, data, first_line) from None
    numbers = np.arange(first_line, first_line + len(newlines), dtype=np.int64)
    return LineBlock(pa.table({"line": lines, "line_no": numbers, "offset": starts + offset}))


def _not_utf8(file: Path, data: bytes, first_line: int) -> LogParseError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        return LogParseError(
            file, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)"
        )
    return LogParseError(file, first_line, "not UTF-8 text")


def read_line(file: Path, offset: int) -> str:
    """The line starting at a byte offset (a quarantined row's source, read again when needed)."""
    with file.open("rb") as handle:
        handle.seek(offset)
        return handle.readline().decode("utf-8").rstrip("\n")
