"""Readers: every format yields stable ids; every bad input names its problem."""

from __future__ import annotations

import hashlib
import json

import pytest

from unlearning_jobs.engine.pii.readers import (
    DatasetFormat,
    DatasetFormatError,
    SourceRecord,
    content_record_id,
    detect_format,
    file_sha256,
    read_records,
)

TEXTS = ["Call Jane Doe on 020 7946 0958.", "Order 42 shipped.", "Email bob@example.com."]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_jsonl_with_id_field(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)])
    records = list(read_records(path, id_field="id"))
    assert records == [SourceRecord(f"r{i}", t, i + 1) for i, t in enumerate(TEXTS)]


def test_record_without_id_field_gets_prefixed_content_hash(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in TEXTS])
    records = list(read_records(path))
    expected = "sha256:" + hashlib.sha256(TEXTS[0].encode()).hexdigest()
    assert records[0].record_id == expected == content_record_id(TEXTS[0])


def test_content_ids_are_stable_across_reordering(tmp_path):
    first = _write_jsonl(tmp_path / "a.jsonl", [{"text": t} for t in TEXTS])
    second = _write_jsonl(tmp_path / "b.jsonl", [{"text": t} for t in reversed(TEXTS)])
    ids = {r.text: r.record_id for r in read_records(first)}
    assert ids == {r.text: r.record_id for r in read_records(second)}


def test_repeated_text_without_id_field_gets_numbered_copies(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("same line\nother\nsame line\n", encoding="utf-8")
    ids = [r.record_id for r in read_records(path)]
    assert ids[2] == ids[0] + ":2"
    assert len(set(ids)) == 3


def test_csv_with_configurable_fields(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('uid,body\n7,"Hello, Jane"\n8,"Line one\nline two"\n', encoding="utf-8")
    records = list(read_records(path, text_field="body", id_field="uid"))
    assert [(r.record_id, r.text) for r in records] == [("7", "Hello, Jane"), ("8", "Line one\nline two")]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"rid": [1, 2, 3], "content": TEXTS}), path)
    records = list(read_records(path, text_field="content", id_field="rid"))
    assert [(r.record_id, r.text, r.line_no) for r in records] == [
        ("1", TEXTS[0], 1),
        ("2", TEXTS[1], 2),
        ("3", TEXTS[2], 3),
    ]


def test_plain_text_one_record_a_line_skipping_blank_lines(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text(TEXTS[0] + "\n\n" + TEXTS[1] + "\n", encoding="utf-8")
    records = list(read_records(path))
    assert [(r.text, r.line_no) for r in records] == [(TEXTS[0], 1), (TEXTS[1], 3)]


def test_several_text_fields_are_joined(tmp_path):
    path = tmp_path / "tofu.json"
    path.write_text(json.dumps({"question": "Who?", "answer": "Jaime Vasquez."}) + "\n", encoding="utf-8")
    assert detect_format(path) is DatasetFormat.JSONL
    (record,) = read_records(path, text_field=("question", "answer"))
    assert record.text == "Who?\nJaime Vasquez."


def test_json_array(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": t} for t in TEXTS]), encoding="utf-8")
    assert detect_format(path) is DatasetFormat.JSON
    assert [r.text for r in read_records(path)] == TEXTS


def test_file_sha256(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()


# --- bad input ---------------------------------------------------------------------------------


def _error(path, **kwargs) -> str:
    with pytest.raises(DatasetFormatError) as caught:
        list(read_records(path, **kwargs))
    return str(caught.value)


def test_unreadable_file(tmp_path):
    assert "cannot read file" in _error(tmp_path / "missing.jsonl")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    assert "file is empty" in _error(path)


def test_file_of_blank_lines_holds_no_records(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n \n", encoding="utf-8")
    assert "no records" in _error(path)


def test_malformed_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": broken\n', encoding="utf-8")
    assert "line 2: malformed JSON" in _error(path)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('["a list"]\n', encoding="utf-8")
    assert "line 1: expected a JSON object" in _error(path)


def test_missing_text_field_is_named(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"text": "a"}, {"body": "b"}])
    message = _error(path)
    assert "line 2" in message and "missing text field 'text'" in message


def test_text_field_holding_a_number(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"text": 5}])
    assert "holds int, not text" in _error(path)


def test_duplicate_ids_are_named(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    message = _error(path, id_field="id")
    assert "line 2" in message and "duplicate id 'a'" in message


def test_missing_id_is_named(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "x"}, {"text": "y"}])
    assert "line 2: missing id field 'id'" in _error(path, id_field="id")


def test_csv_row_with_wrong_field_count(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,text\n1,hello\n2,hello,extra\n", encoding="utf-8")
    assert "line 3: malformed CSV row" in _error(path)


def test_csv_without_text_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    assert "missing text field 'text'" in _error(path)


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"this is not parquet")
    assert "not a readable Parquet file" in _error(path)


def test_parquet_without_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"body": ["x"]}), path)
    assert "missing text field 'text'" in _error(path)


def test_invalid_utf8_line_is_named(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes(b"fine\n\xff\xfe broken\n")
    assert "line 2: not valid utf-8" in _error(path)


def test_unknown_format(tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_bytes(b"PK")
    assert "unknown data-set format '.xlsx'" in _error(path)
    assert "unknown data-set format 'xml'" in _error(path, format="xml")


def test_errors_are_value_errors():
    assert issubclass(DatasetFormatError, ValueError)
