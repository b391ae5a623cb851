"""The data-set registry: versions with stable ids, a canonical copy and manifest; bad input refused whole."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from compliance.models import AuditEvent
from tests.factories.datasets import write_jsonl
from tests.factories.jobs import run_inline
from unlearning_jobs.datasets import storage
from unlearning_jobs.datasets.services import DatasetRegistrationError, dataset_version_register
from unlearning_jobs.models import Dataset, DatasetRecord, DatasetVersion, IndexChunk, UnlearningJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    """Point LETHE_DATA_DIR at a fresh folder and allow one import root beside it."""
    settings.LETHE_DATA_DIR = tmp_path / "data"
    settings.LETHE_DATA_DIR.mkdir()
    settings.LETHE_IMPORT_ROOTS = [tmp_path / "imports"]
    (tmp_path / "imports").mkdir()
    return settings.LETHE_DATA_DIR


def _nothing_registered(data_dir: Path) -> None:
    assert not Dataset.objects.exists()
    assert not DatasetVersion.objects.exists()
    assert not DatasetRecord.objects.exists()
    assert not IndexChunk.objects.exists()
    leftovers = (
        [p for p in (data_dir / "datasets").rglob("*") if p.is_file()]
        if (data_dir / "datasets").exists()
        else []
    )
    assert leftovers == []


def test_registering_a_file_writes_version_records_chunks_copy_manifest_and_an_audit_event(
    data_dir, engineer
):
    records = {f"r{i}": f"Record number {i} about nothing personal." for i in range(7)}
    source = write_jsonl(data_dir / "incoming" / "tickets.jsonl", records)

    version = dataset_version_register(
        name="tickets", path=source, actor=engineer, id_field="id", chunk_size=3, enqueue=False
    )

    assert (version.dataset.name, version.number, version.status) == ("tickets", 1, "registered")
    assert version.record_count == 7 and version.format == "jsonl" and version.text_fields == ["text"]
    assert version.file_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    folder = data_dir / version.stored_path
    assert folder == data_dir / "datasets" / str(version.dataset_id) / "v1"
    manifest = (folder / "manifest.jsonl").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == version.manifest_sha256
    lines = [json.loads(line) for line in manifest.decode().splitlines()]
    assert [line["id"] for line in lines] == sorted(records)
    assert lines[0]["text_sha256"] == hashlib.sha256(records["r0"].encode()).hexdigest()
    assert list(version.chunks.values_list("start", "end")) == [(0, 3), (3, 6), (6, 7)]
    by_id = {record.record_id: record for record in version.records.all()}
    assert storage.dataset_record_text(by_id["r5"]) == records["r5"]
    assert [r.text for r in storage.dataset_version_records_read(version=version, start=2, end=4)] == [
        records["r2"],
        records["r3"],
    ]
    event = AuditEvent.objects.get(action="dataset_version.registered")
    assert event.actor == engineer and event.details["record_count"] == 7
    assert event.details["manifest_sha256"] == version.manifest_sha256
    assert version.index_configuration["spacy_model"]["name"] and version.hash_key_id


def test_records_without_an_id_field_are_named_by_their_text_and_repeats_kept_apart(data_dir):
    source = data_dir / "plain.txt"
    source.write_text("same line\nother line\nsame line\n", encoding="utf-8")

    version = dataset_version_register(name="plain", path=source, actor=None, enqueue=False)

    ids = list(version.records.order_by("ordinal").values_list("record_id", flat=True))
    digest = "sha256:" + hashlib.sha256(b"same line").hexdigest()
    assert ids[0] == digest and ids[2] == digest + ":2" and version.format == "text"


def test_csv_and_parquet_register_and_several_text_fields_are_joined(data_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"qid": "a", "question": "Who wrote it?", "answer": "Ann Lee did."},
        {"qid": "b", "question": "When?", "answer": "In 1999."},
    ]
    csv_path = data_dir / "qa.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["qid", "question", "answer"])
        writer.writeheader()
        writer.writerows(rows)
    parquet_path = data_dir / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet_path)

    from_csv = dataset_version_register(
        name="qa-csv", path=csv_path, actor=None, text_field="question,answer", id_field="qid", enqueue=False
    )
    from_parquet = dataset_version_register(
        name="qa-parquet",
        path=parquet_path,
        actor=None,
        text_field=["question", "answer"],
        id_field="qid",
        enqueue=False,
    )

    for version in (from_csv, from_parquet):
        record = version.records.get(record_id="a")
        assert storage.dataset_record_text(record) == "Who wrote it?\nAnn Lee did."
    assert from_csv.manifest_sha256 == from_parquet.manifest_sha256  # same records, same manifest


def test_a_new_file_becomes_the_next_version_and_the_same_records_again_are_refused(data_dir):
    first = write_jsonl(data_dir / "a.jsonl", {"1": "one", "2": "two"})
    second = write_jsonl(data_dir / "b.jsonl", {"1": "one", "2": "two", "3": "three"})
    again = write_jsonl(data_dir / "c.jsonl", [{"id": "2", "text": "two"}, {"id": "1", "text": "one"}])
    dataset_version_register(name="numbers", path=first, actor=None, id_field="id", enqueue=False)
    v2 = dataset_version_register(name="numbers", path=second, actor=None, id_field="id", enqueue=False)
    assert v2.number == 2 and v2.dataset.versions.count() == 2

    with pytest.raises(DatasetRegistrationError, match="exactly those of numbers v1"):
        dataset_version_register(name="numbers", path=again, actor=None, id_field="id", enqueue=False)
    assert DatasetVersion.objects.count() == 2


BAD_FILES = {
    "empty": (b"", "file is empty"),
    "malformed": (b'{"id": "1", "text": "ok"}\n{"id": "2", "text": \n', "line 2: malformed JSON"),
    "missing_text": (
        b'{"id": "1", "text": "ok"}\n{"id": "2", "body": "no text"}\n',
        "missing text field 'text'",
    ),
    "duplicate_ids": (b'{"id": "1", "text": "a"}\n{"id": "1", "text": "b"}\n', "duplicate id '1'"),
    "not_utf8": (b'{"id": "1", "text": "caf\xe9"}\n', "not valid utf-8"),
    "not_objects": (b'["a", "b"]\n', "expected a JSON object"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_are_refused_with_the_reason_and_nothing_is_registered(data_dir, kind):
    content, message = BAD_FILES[kind]
    source = data_dir / f"{kind}.jsonl"
    source.write_bytes(content)

    with pytest.raises(DatasetRegistrationError) as caught:
        dataset_version_register(name="bad", path=source, actor=None, id_field="id", enqueue=False)

    assert message in " ".join(caught.value.messages)
    _nothing_registered(data_dir)


def test_paths_outside_the_allowed_folders_are_refused_even_through_a_link(data_dir, tmp_path):
    outside = write_jsonl(tmp_path / "elsewhere" / "secret.jsonl", {"1": "text"})
    link = data_dir / "link.jsonl"
    os.symlink(outside, link)
    for path in (outside, link, data_dir / ".." / "elsewhere" / "secret.jsonl"):
        with pytest.raises(DatasetRegistrationError, match="Not an allowed location"):
            dataset_version_register(name="x", path=path, actor=None, id_field="id", enqueue=False)
    with pytest.raises(DatasetRegistrationError, match="no such file"):
        dataset_version_register(name="x", path=data_dir / "missing.jsonl", actor=None, enqueue=False)
    with pytest.raises(DatasetRegistrationError, match="not a regular file"):
        dataset_version_register(name="x", path=data_dir, actor=None, enqueue=False)
    _nothing_registered(data_dir)


def test_an_import_root_may_be_configured_and_files_over_the_size_limit_are_refused(
    data_dir, tmp_path, settings
):
    inside_root = write_jsonl(tmp_path / "imports" / "ok.jsonl", {"1": "a short text"})
    assert dataset_version_register(name="ok", path=inside_root, actor=None, id_field="id", enqueue=False)
    settings.LETHE_IMPORT_MAX_BYTES = 10
    big = write_jsonl(data_dir / "big.jsonl", {"1": "more than ten bytes of text"})
    with pytest.raises(DatasetRegistrationError, match="over the limit of 10 bytes"):
        dataset_version_register(name="big", path=big, actor=None, id_field="id", enqueue=False)
    assert not Dataset.objects.filter(name="big").exists()


def test_unknown_formats_and_overlong_ids_are_refused(data_dir):
    source = write_jsonl(data_dir / "ok.jsonl", {"1": "text"})
    with pytest.raises(DatasetRegistrationError, match="Unknown format 'xml'"):
        dataset_version_register(name="x", path=source, actor=None, format="xml", enqueue=False)
    long_id = write_jsonl(data_dir / "long.jsonl", {"i" * 300: "text"})
    with pytest.raises(DatasetRegistrationError, match="at most 255"):
        dataset_version_register(name="x", path=long_id, actor=None, id_field="id", enqueue=False)
    _nothing_registered(data_dir)


def test_only_engineers_register(data_dir, officer):
    source = write_jsonl(data_dir / "ok.jsonl", {"1": "text"})
    with pytest.raises(storage.DatasetActionNotPermitted):
        dataset_version_register(name="x", path=source, actor=officer, enqueue=False)


# --- pages and API -----------------------------------------------------------------------------


def test_an_engineer_uploads_a_file_in_the_browser_form(
    client, data_dir, engineer, django_capture_on_commit_callbacks
):
    client.force_login(engineer)
    upload = SimpleUploadedFile(
        "tickets.jsonl", b'{"id": "1", "text": "hello"}\n{"id": "2", "text": "bye"}\n'
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("datasets:upload"),
            {"name": "uploaded", "file": upload, "text_field": "text", "id_field": "id"},
        )
    version = DatasetVersion.objects.get(dataset__name="uploaded")
    assert response.status_code == 302 and response["Location"] == version.dataset.get_absolute_url()
    assert version.source_name == "tickets.jsonl" and version.record_count == 2
    assert len(callbacks) == 1  # the chunk tasks are sent once the registration commits
    page = client.get(version.dataset.get_absolute_url())
    html = page.content.decode()
    assert (
        page.status_code == 200
        and 'data-field="chunks_done">0<' in html
        and 'data-field="chunks_total">1<' in html
    )
    progress = client.get(reverse("datasets:progress", args=[version.pk])).json()
    assert (progress["status"], progress["chunks_done"], progress["chunks_total"]) == ("registered", 0, 1)


def test_an_upload_over_the_limit_or_with_bad_records_is_refused_on_the_page(
    client, data_dir, engineer, settings
):
    client.force_login(engineer)
    settings.LETHE_UPLOAD_MAX_BYTES = 20
    big = SimpleUploadedFile("big.jsonl", b'{"id": "1", "text": "a text longer than twenty bytes"}\n')
    response = client.post(reverse("datasets:upload"), {"name": "big", "file": big, "text_field": "text"})
    assert response.status_code == 400 and "over the upload limit of 20 bytes" in response.content.decode()
    settings.LETHE_UPLOAD_MAX_BYTES = 10_000
    bad = SimpleUploadedFile("bad.jsonl", b'{"id": "1", "body": "no text"}\n')
    response = client.post(reverse("datasets:upload"), {"name": "bad", "file": bad, "text_field": "text"})
    assert response.status_code == 400 and "missing text field" in response.content.decode()
    assert not list((data_dir / "uploads").glob("*/*")) if (data_dir / "uploads").exists() else True
    _nothing_registered(data_dir)


def test_data_set_pages_check_roles(client, data_dir, officer, auditor):
    client.force_login(auditor)
    assert client.get(reverse("datasets:list")).status_code == 403
    client.force_login(officer)
    assert client.get(reverse("datasets:list")).status_code == 200
    upload = SimpleUploadedFile("x.jsonl", b'{"text": "x"}\n')
    assert client.post(reverse("datasets:upload"), {"name": "x", "file": upload}).status_code == 403


def test_the_api_registers_by_path_lists_and_reports_bad_input(data_dir, engineer, officer):
    from rest_framework.test import APIClient

    source = write_jsonl(data_dir / "api.jsonl", {"a": "first", "b": "second"})
    client = APIClient()
    client.force_authenticate(engineer)
    created = client.post(
        "/api/v1/datasets/",
        {"name": "api-set", "path": str(source), "id_field": "id", "text_field": "text", "chunk_size": 1},
        format="json",
    )
    # The file is read by a job on the cpu queue, not in the request: nothing is registered yet.
    assert created.status_code == 202, created.data
    assert created.data["kind"] == "register_dataset" and created.data["queue"] == "cpu"
    assert created.data["status"] == "queued" and not Dataset.objects.exists()
    job = UnlearningJob.objects.get(pk=created.data["id"])
    assert run_inline(job) == "succeeded"
    done = client.get(f"/api/v1/jobs/{job.pk}/").data
    version = DatasetVersion.objects.get(pk=done["produced_dataset_version"])
    assert version.record_count == 2 and version.registered_by == engineer
    assert done["metrics"]["records"] == 2 and done["metrics"]["manifest_sha256"] == version.manifest_sha256
    listed = client.get("/api/v1/datasets/").data
    assert [d["name"] for d in listed] == ["api-set"]
    detail = client.get(f"/api/v1/datasets/{listed[0]['id']}/").data
    assert detail["versions"][0]["manifest_sha256"] == version.manifest_sha256
    assert detail["versions"][0]["progress"]["chunks_total"] == 2

    refused = client.post("/api/v1/datasets/", {"name": "x", "path": "/etc/passwd"}, format="json")
    assert refused.status_code == 400 and "Not an allowed location" in refused.data["path"][0]
    client.force_authenticate(officer)
    assert (
        client.post("/api/v1/datasets/", {"name": "x", "path": str(source)}, format="json").status_code == 403
    )
    assert client.get("/api/v1/datasets/").status_code == 200


def test_ingest_dataset_refuses_to_wait_for_a_worker_that_is_not_there(data_dir):
    from django.core.management import CommandError, call_command

    source = write_jsonl(data_dir / "cmd.jsonl", {"1": "text"})
    with pytest.raises(CommandError, match="No worker consuming the 'cpu' queue"):
        call_command("ingest_dataset", "--name", "cmd", "--path", str(source))
    assert not Dataset.objects.exists()
    with pytest.raises(CommandError, match="Not an allowed location"):
        call_command("ingest_dataset", "--name", "cmd", "--path", "/etc/hostname", "--inline")


def test_a_registration_job_keeps_the_registry_s_reason_and_registers_nothing(data_dir, engineer):
    """A file the registry refuses fails its job with the reason; fixed, the same job registers it."""
    from rest_framework.test import APIClient

    source = data_dir / "broken.jsonl"
    source.write_text('{"text": "fine"}\n{"text": \n', encoding="utf-8")
    client = APIClient()
    client.force_authenticate(engineer)
    created = client.post("/api/v1/datasets/", {"name": "broken", "path": str(source)}, format="json")
    assert created.status_code == 202, created.data
    job = UnlearningJob.objects.get(pk=created.data["id"])
    assert run_inline(job) == "failed"
    job.refresh_from_db()
    assert "the registry refused the file" in job.error and "line 2" in job.error
    assert not Dataset.objects.exists() and not DatasetVersion.objects.exists()

    source.write_text('{"text": "fine"}\n{"text": "mended"}\n', encoding="utf-8")
    retried = client.post(f"/api/v1/jobs/{job.pk}/actions/retry/", {}, format="json")
    assert retried.status_code == 200, retried.data
    job.refresh_from_db()
    assert run_inline(job) == "succeeded"
    job.refresh_from_db()
    assert job.produced_dataset_version.record_count == 2


def test_a_registration_job_run_again_returns_its_version_instead_of_registering_twice(data_dir, engineer):
    """A redelivered attempt (the worker died after the registration committed, the job was queued
    again) finds the version the job recorded in the registration's own transaction."""
    from unlearning_jobs.dataset_jobs.services import dataset_register_job_create

    source = write_jsonl(data_dir / "twice.jsonl", {"1": "one", "2": "two"})
    job = dataset_register_job_create(name="twice", path=source, actor=engineer, id_field="id", enqueue=False)
    assert run_inline(job) == "succeeded"
    job.refresh_from_db()
    first = job.produced_dataset_version
    # As the stale sweep leaves a job whose worker died before it could record the success.
    UnlearningJob.objects.filter(pk=job.pk).update(status="queued", finished_at=None, metrics={})
    job.refresh_from_db()
    assert run_inline(job) == "succeeded"
    job.refresh_from_db()
    assert job.produced_dataset_version == first and job.metrics["dataset_version_id"] == first.pk
    assert "an earlier attempt registered" in job.log
    assert DatasetVersion.objects.filter(dataset__name="twice").count() == 1
    assert AuditEvent.objects.filter(action="dataset_version.registered").count() == 1
