"""Read training records from JSONL, JSON, CSV, Parquet and plain-text files, with stable ids.

A record's id must be the same every time the file is read, because the index, the forget set
and the audit report refer to records by id. The record's own id field is used when the data
set has one; otherwise the id is derived from the text (``sha256:<hex>``), so it survives
re-ordering of the file. Every problem with the input is a ``DatasetFormatError`` naming the
file, the line and what is wrong, so nothing is half-registered.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "DatasetFormat",
    "DatasetFormatError",
    "SourceRecord",
    "detect_format",
    "file_sha256",
    "content_record_id",
    "read_records",
]

_CHUNK_BYTES = 1 << 20


class DatasetFormatError(ValueError):
    """The data-set file cannot be read as records; the message says where and why."""


class DatasetFormat(StrEnum):
    """A supported source format."""

    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    TEXT = "text"


_EXTENSIONS = {
    ".jsonl": DatasetFormat.JSONL,
    ".ndjson": DatasetFormat.JSONL,
    ".csv": DatasetFormat.CSV,
    ".parquet": DatasetFormat.PARQUET,
    ".pq": DatasetFormat.PARQUET,
    ".txt": DatasetFormat.TEXT,
    ".text": DatasetFormat.TEXT,
}


@dataclass(frozen=True)
class SourceRecord:
    """One training record: its stable id, its text and where it is in the file (1-based)."""

    record_id: str
    text: str
    line_no: int


def detect_format(path: str | Path) -> DatasetFormat:
    """Return the format named by the file's extension.

    A ``.json`` file is JSON Lines when its first non-blank character is not ``[`` (data sets
    such as TOFU ship JSON Lines under ``.json``), else one JSON array of objects.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix == ".json":
        with _open_text(path) as handle:
            head = handle.read(4096).lstrip()
        return DatasetFormat.JSON if head.startswith("[") else DatasetFormat.JSONL
    raise DatasetFormatError(
        f"{path.name}: unknown data-set format {suffix or '(no extension)'!r}; "
        f"use one of {sorted({*_EXTENSIONS, '.json'})} or name the format"
    )


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as error:
        raise DatasetFormatError(f"{Path(path).name}: cannot read file: {error.strerror or error}") from None
    return digest.hexdigest()


def content_record_id(text: str) -> str:
    """Return the id of a record that has no id field: ``sha256:`` and the hex digest of its text."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_records(
    path: str | Path,
    *,
    format: DatasetFormat | str | None = None,
    text_field: str | Sequence[str] = "text",
    id_field: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[SourceRecord]:
    """Yield the file's records in order, checking each; raise ``DatasetFormatError`` on bad input.

    ``text_field`` names the field holding the text (ignored for plain text); a sequence of
    fields is joined with newlines ("question", "answer"). ``id_field`` names the record's own
    id; a repeated id is an error. Without ``id_field`` the id is the text's SHA-256, and a
    repeated text gets ``:2``, ``:3``… by order of appearance, so each copy can be located and
    erased. Blank lines of line-based formats are skipped; line numbers stay those of the file.
    """
    path = Path(path)
    kind = _format_of(path, format)
    fields = (text_field,) if isinstance(text_field, str) else tuple(text_field)
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise DatasetFormatError("text field must be a non-empty field name")
    _check_readable(path)
    if kind is DatasetFormat.TEXT:
        rows: Iterator[tuple[int, str | dict]] = _text_rows(path, encoding)
    elif kind is DatasetFormat.JSONL:
        rows = _jsonl_rows(path, encoding)
    elif kind is DatasetFormat.JSON:
        rows = _json_rows(path, encoding)
    elif kind is DatasetFormat.CSV:
        rows = _csv_rows(path, encoding)
    else:
        rows = _parquet_rows(path)

    seen_ids: set[str] = set()
    text_copies: dict[str, int] = {}
    count = 0
    for line_no, row in rows:
        text = row if isinstance(row, str) else _text_of(path, line_no, row, fields)
        if id_field is None or isinstance(row, str):
            record_id = content_record_id(text)
            copies = text_copies.get(record_id, 0) + 1
            text_copies[record_id] = copies
            if copies > 1:
                record_id = f"{record_id}:{copies}"
        else:
            record_id = _id_of(path, line_no, row, id_field)
            if record_id in seen_ids:
                raise DatasetFormatError(
                    f"{path.name}: line {line_no}: duplicate id {record_id!r} in field {id_field!r}"
                )
        seen_ids.add(record_id)
        count += 1
        yield SourceRecord(record_id=record_id, text=text, line_no=line_no)
    if count == 0:
        raise DatasetFormatError(f"{path.name}: file holds no records")


# --- helpers ---------------------------------------------------------------------------------


def _format_of(path: Path, format: DatasetFormat | str | None) -> DatasetFormat:
    if not format:
        return detect_format(path)
    try:
        return DatasetFormat(str(format).lower())
    except ValueError:
        raise DatasetFormatError(
            f"unknown data-set format {format!r}; use one of {[f.value for f in DatasetFormat]}"
        ) from None


def _open_text(path: Path, encoding: str = "utf-8"):
    try:
        return open(path, encoding=encoding, newline="")
    except OSError as error:
        raise DatasetFormatError(f"{path.name}: cannot read file: {error.strerror or error}") from None


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DatasetFormatError(f"{path.name}: cannot read file: {error.strerror or error}") from None
    if not path.is_file():
        raise DatasetFormatError(f"{path.name}: is not a regular file")
    if size == 0:
        raise DatasetFormatError(f"{path.name}: file is empty")


def _decoded_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line with its newline), decoding line by line to name a bad line."""
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise DatasetFormatError(f"{path.name}: cannot read file: {error.strerror or error}") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as error:
                raise DatasetFormatError(
                    f"{path.name}: line {line_no}: not valid {encoding} text ({error.reason})"
                ) from None
            if line_no == 1:
                line = line.removeprefix("\ufeff")
            yield line_no, line


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    for line_no, line in _decoded_lines(path, encoding):
        yield line_no, line.rstrip("\r\n")


def _text_rows(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    for line_no, line in _lines(path, encoding):
        if line.strip():
            yield line_no, line


def _jsonl_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict]]:
    for line_no, line in _lines(path, encoding):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetFormatError(
                f"{path.name}: line {line_no}: malformed JSON ({error.msg} at column {error.colno})"
            ) from None
        if not isinstance(row, dict):
            raise DatasetFormatError(
                f"{path.name}: line {line_no}: expected a JSON object, got {type(row).__name__}"
            )
        yield line_no, row


def _json_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict]]:
    with _open_text(path, encoding) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as error:
            raise DatasetFormatError(
                f"{path.name}: line {error.lineno}: malformed JSON ({error.msg})"
            ) from None
        except UnicodeDecodeError as error:
            raise DatasetFormatError(f"{path.name}: not valid {encoding} text ({error.reason})") from None
    if not isinstance(data, list):
        raise DatasetFormatError(f"{path.name}: expected a JSON array of objects")
    for index, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise DatasetFormatError(
                f"{path.name}: item {index}: expected a JSON object, got {type(row).__name__}"
            )
        yield index, row


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict]]:
    csv.field_size_limit(1 << 30)
    reader = csv.reader(line for _, line in _decoded_lines(path, encoding))
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise DatasetFormatError(f"{path.name}: CSV has no header row")
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DatasetFormatError(
                    f"{path.name}: line {reader.line_num}: malformed CSV row: {len(row)} "
                    f"fields, the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row))
    except csv.Error as error:
        raise DatasetFormatError(f"{path.name}: line {reader.line_num}: malformed CSV ({error})") from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise DatasetFormatError(f"{path.name}: not a readable Parquet file ({error})") from None
    row_no = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row


def _text_of(path: Path, line_no: int, row: dict, fields: tuple[str, ...]) -> str:
    parts: list[str] = []
    for field in fields:
        if field not in row:
            raise DatasetFormatError(
                f"{path.name}: line {line_no}: missing text field {field!r} "
                f"(fields present: {sorted(map(str, row))})"
            )
        value = row[field]
        if not isinstance(value, str):
            raise DatasetFormatError(
                f"{path.name}: line {line_no}: text field {field!r} holds {type(value).__name__}, not text"
            )
        parts.append(value)
    return "\n".join(parts)


def _id_of(path: Path, line_no: int, row: dict, id_field: str) -> str:
    value = row.get(id_field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetFormatError(f"{path.name}: line {line_no}: missing id field {id_field!r}")
    if isinstance(value, (dict, list, float)):
        raise DatasetFormatError(
            f"{path.name}: line {line_no}: id field {id_field!r} holds "
            f"{type(value).__name__}; ids must be strings or integers"
        )
    return str(value).strip()
