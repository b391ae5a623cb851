"""Indexing in chunks: once per chunk, resumable after a crash with the same result, failures kept.

The real Presidio engine scans these small files (loaded once per test process); the tests of
claiming and failing use a stand-in scan so that they say what they test and run fast.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from compliance.models import AuditEvent
from requests_app.identifiers import pii_hasher
from tests.factories.datasets import register_and_index, write_jsonl
from unlearning_jobs.datasets import indexing, storage
from unlearning_jobs.datasets import services as datasets
from unlearning_jobs.engine.pii.scan import Finding, RecordFindings
from unlearning_jobs.models import DatasetVersion, IndexChunk, PiiFinding

pytestmark = pytest.mark.django_db

PEOPLE = [
    ("Alice Walker", "alice.walker@example.com", "07911 123456"),
    ("Bruno Diaz", "bruno.diaz@example.org", "07981 555123"),
    ("Chen Wei", "chen.wei@example.net", "07400 123456"),
]


def _records(count: int) -> dict[str, str]:
    records = {}
    for index in range(count):
        name, email, phone = PEOPLE[index % len(PEOPLE)]
        records[f"t{index:03d}"] = (
            f"Ticket {index}: {name} wrote from {email} and asked us to call "
            f"{phone} about account ACC-{100000 + index}."
        )
    return records


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    return settings.LETHE_DATA_DIR


def _findings(version: DatasetVersion) -> list[tuple]:
    return sorted(
        PiiFinding.objects.filter(version=version).values_list(
            "record__record_id",
            "entity_type",
            "start",
            "end",
            "score",
            "recogniser",
            "value_hash",
            "sorted_hash",
        )
    )


def _register(data_dir, name: str, records: dict[str, str], chunk_size: int = 4) -> DatasetVersion:
    source = write_jsonl(data_dir / "in" / f"{name}.jsonl", records)
    return datasets.dataset_version_register(
        name=name, path=source, actor=None, id_field="id", chunk_size=chunk_size, enqueue=False
    )


def _stand_in_scan(records):
    """Report one finding per record: an ACCOUNT_ID hash of the record's id (deterministic)."""
    hasher = pii_hasher()
    return [
        RecordFindings(
            record.record_id,
            record.line_no,
            (
                Finding(
                    "ACCOUNT_ID", 0, 3, 1.0, "stand-in", hasher.hash("ACCOUNT_ID", record.record_id.upper())
                ),
            ),
        )
        for record in records
    ]


def test_a_straight_run_indexes_every_record_with_keyed_hashes_and_records_the_configuration(data_dir):
    records = _records(10)
    version = register_and_index(
        name="straight", path=write_jsonl(data_dir / "s.jsonl", records), chunk_size=4
    )

    assert version.status == "indexed" and version.indexed_at is not None
    progress = indexing.dataset_version_progress(version)
    assert (progress["chunks_done"], progress["chunks_total"], progress["records_done"]) == (3, 3, 10)
    assert progress["findings_by_type"]["EMAIL"] == 10 and progress["findings_by_type"]["PHONE"] == 10
    assert progress["findings_by_type"]["ACCOUNT_ID"] == 10 and progress["findings_by_type"]["PERSON"] > 0
    rows = PiiFinding.objects.filter(version=version)
    assert rows.count() == progress["findings"]
    hasher = pii_hasher()
    email = rows.exclude(recogniser="lethe-match-keys").get(record__record_id="t001", entity_type="EMAIL")
    assert (
        rows.filter(record__record_id="t001", entity_type="EMAIL", recogniser="lethe-match-keys").count() == 1
    )
    assert progress["findings_by_type"]["MATCH_KEYS"] == rows.filter(recogniser="lethe-match-keys").count()
    assert email.value_hash == hasher.hash("EMAIL", "bruno.diaz@example.org")
    assert records["t001"][email.start : email.end] == "bruno.diaz@example.org"
    stored = {value for row in rows.values_list("value_hash", "sorted_hash") for value in row if value}
    assert all(len(value) == 64 for value in stored) and "bruno.diaz@example.org" not in stored
    assert (
        version.index_configuration["recognisers"]
        and version.index_configuration["hash_key_id"] == hasher.key_id
    )
    event = AuditEvent.objects.get(action="dataset_version.indexed")
    assert event.details["findings"] == progress["findings"] and event.details["records"] == 10


def test_resuming_after_a_crash_gives_the_same_findings_and_never_redoes_a_chunk(data_dir):
    records = _records(14)
    reference = register_and_index(
        name="reference", path=write_jsonl(data_dir / "r.jsonl", records), chunk_size=3
    )
    version = _register(data_dir, "crashed", records, chunk_size=3)
    chunks = list(version.chunks.order_by("number"))
    assert len(chunks) == 5

    # A worker finishes two chunks, then dies holding the third; two are still pending.
    for chunk in chunks[:2]:
        assert indexing.index_chunk_run(chunk_id=chunk.pk, worker="worker-a") == "done"
    claim = indexing.index_chunk_claim(chunk_id=chunks[2].pk, worker="worker-a")
    assert claim is not None
    first_record = version.records.get(ordinal=chunks[2].start)
    PiiFinding.objects.create(
        version=version,
        record=first_record,
        entity_type="EMAIL",
        start=0,
        end=1,
        score=1.0,
        recogniser="half-written",
        value_hash="0" * 64,
    )
    IndexChunk.objects.filter(pk=chunks[2].pk).update(started_at=timezone.now() - timedelta(hours=2))
    done_before = {c.pk: c.finished_at for c in IndexChunk.objects.filter(pk__in=[c.pk for c in chunks[:2]])}
    # A fresh claim is not taken over: only a stale one is.
    assert indexing.index_chunk_claim(chunk_id=chunks[0].pk, worker="worker-b") is None

    queued = indexing.dataset_version_index_resume(version=version, actor=None, enqueue=False)
    assert queued == [c.pk for c in chunks[2:]]
    indexing.dataset_version_index_inline(version=version)

    version.refresh_from_db()
    assert version.status == "indexed"
    assert _findings(version) == _findings(reference)  # the half-written row is gone, nothing doubled
    after = {c.pk: c for c in version.chunks.all()}
    for pk, finished_at in done_before.items():
        assert (
            after[pk].attempts == 1
            and after[pk].finished_at == finished_at
            and after[pk].worker == "worker-a"
        )
    assert after[chunks[2].pk].attempts == 2 and after[chunks[2].pk].worker.startswith("inline@")
    assert all(chunk.status == "done" for chunk in after.values())
    assert AuditEvent.objects.filter(action="dataset_version.indexing_resumed").count() == 1
    assert AuditEvent.objects.filter(action="dataset_version.indexed", object_id=str(version.pk)).count() == 1


def test_a_chunk_delivered_twice_is_indexed_once_and_a_lost_claim_writes_nothing(data_dir):
    version = _register(data_dir, "twice", {f"r{i}": f"text {i}" for i in range(4)}, chunk_size=2)
    first, second = version.chunks.order_by("number")
    assert indexing.index_chunk_run(chunk_id=first.pk, worker="w1", scan=_stand_in_scan) == "done"
    assert indexing.index_chunk_run(chunk_id=first.pk, worker="w2", scan=_stand_in_scan) == "skipped"

    slow = indexing.index_chunk_claim(chunk_id=second.pk, worker="slow")
    IndexChunk.objects.filter(pk=second.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert indexing.index_chunk_run(chunk_id=second.pk, worker="fast", scan=_stand_in_scan) == "done"
    records = storage.dataset_version_records_read(version=version, start=2, end=4)
    assert indexing.index_chunk_complete(claim=slow, results=_stand_in_scan(records)) is False

    assert PiiFinding.objects.filter(version=version).count() == 4
    assert IndexChunk.objects.get(pk=second.pk).worker == "fast"
    version.refresh_from_db()
    assert version.status == "indexed"


def test_a_chunk_held_by_a_worker_whose_heartbeat_stopped_is_taken_over(data_dir):
    from unlearning_jobs.models import WorkerHeartbeat

    version = _register(data_dir, "dead-worker", {"a": "one", "b": "two"}, chunk_size=1)
    first, second = version.chunks.order_by("number")
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="alive@h", started_at=now, last_seen_at=now)
    WorkerHeartbeat.objects.create(hostname="dead@h", started_at=now, last_seen_at=now - timedelta(minutes=5))
    assert indexing.index_chunk_claim(chunk_id=first.pk, worker="alive@h")
    assert indexing.index_chunk_claim(chunk_id=second.pk, worker="dead@h")

    # Both claims are fresh; only the dead worker's chunk may be taken over.
    assert indexing.index_chunk_run(chunk_id=first.pk, worker="other@h", scan=_stand_in_scan) == "busy"
    assert indexing.index_chunk_run(chunk_id=second.pk, worker="other@h", scan=_stand_in_scan) == "done"
    assert IndexChunk.objects.get(pk=second.pk).attempts == 2


def test_failed_scans_are_retried_then_fail_the_version_with_the_error_and_resume_restarts_them(
    data_dir, settings
):
    settings.LETHE_INDEX_MAX_ATTEMPTS = 2
    version = _register(data_dir, "failing", {"a": "one", "b": "two"}, chunk_size=2)
    chunk = version.chunks.get()

    def broken(records):
        raise RuntimeError("model went away")

    for expected in ("pending", "failed"):
        with pytest.raises(RuntimeError):
            indexing.index_chunk_run(chunk_id=chunk.pk, worker="w", scan=broken)
        chunk.refresh_from_db()
        assert chunk.status == expected and "RuntimeError: model went away" in chunk.error
    version.refresh_from_db()
    assert version.status == "failed" and "chunk 0" in version.error
    assert AuditEvent.objects.filter(action="dataset_version.indexing_failed").exists()

    assert indexing.dataset_version_index_resume(version=version, actor=None, enqueue=False) == [chunk.pk]
    indexing.dataset_version_index_inline(version=version, scan=_stand_in_scan)
    version.refresh_from_db()
    assert version.status == "indexed" and version.error == ""


def test_a_version_registered_under_another_hash_key_is_not_indexed_under_the_new_one(data_dir, settings):
    version = _register(data_dir, "old-key", {"a": "one"}, chunk_size=1)
    settings.LETHE_PII_HASH_KEY_ID = "rotated-key"
    with pytest.raises(indexing.IndexingError, match="registered under hash key"):
        indexing.index_chunk_run(chunk_id=version.chunks.get().pk, worker="w")
    version.refresh_from_db()
    assert version.status == "failed" and "register the file again" in version.error.lower()


def test_ingest_dataset_inline_indexes_and_prints_counts(data_dir, capsys):
    source = write_jsonl(data_dir / "cmd.jsonl", _records(5))
    call_command(
        "ingest_dataset",
        "--name",
        "cmd",
        "--path",
        str(source),
        "--id-field",
        "id",
        "--inline",
        "--chunk-size",
        "2",
    )
    out = capsys.readouterr().out
    assert "Registered cmd v1" in out and "5 records" in out
    assert "cmd v1 indexed: 5 records" in out and "EMAIL" in out and "PHONE" in out
    assert DatasetVersion.objects.get(dataset__name="cmd").status == "indexed"


def test_a_derived_version_leaves_out_the_removed_records_and_keeps_the_rest_indexed(data_dir):
    records = _records(6)
    version = register_and_index(name="parent", path=write_jsonl(data_dir / "p.jsonl", records), chunk_size=3)
    remove = list(version.records.filter(record_id__in=["t001", "t004"]))

    derived = datasets.dataset_version_derive(
        version=version, remove=remove, actor=None, reason="Erasure of two records"
    )

    assert (derived.number, derived.parent, derived.status, derived.record_count) == (
        2,
        version,
        "indexed",
        4,
    )
    assert derived.removed_manifest["records_removed"] == 2
    assert len(derived.removed_manifest["record_id_hashes"]) == 2
    assert "t001" not in str(derived.removed_manifest)
    kept = {row[0] for row in _findings_by_record(derived)}
    assert "t001" not in kept and "t000" in kept
    assert _findings_by_record(derived) == [
        row for row in _findings_by_record(version) if row[0] not in {"t001", "t004"}
    ]
    texts = dict((r.record_id, t) for r, t in storage.dataset_version_iter_texts(version=derived))
    assert texts == {k: v for k, v in records.items() if k not in {"t001", "t004"}}
    assert (
        indexing.dataset_version_progress(derived)["findings"]
        == PiiFinding.objects.filter(version=derived).count()
    )
    assert AuditEvent.objects.get(action="dataset_version.derived").details["records_removed"] == 2


def _findings_by_record(version):
    return sorted(
        PiiFinding.objects.filter(version=version).values_list(
            "record__record_id", "entity_type", "start", "end", "value_hash"
        )
    )


def test_surname_first_names_split_by_the_model_are_indexed_whole(data_dir):
    from unlearning_jobs.engine.pii.normalise import normalise_name

    records = {
        "a": "Note: Turner, William prefers to be contacted in the afternoon.",
        "b": "Hello, William, your parcel is on its way.",
        "c": "Giles, Kathryn wrote again about the late delivery.",
    }
    version = register_and_index(name="surnames", path=write_jsonl(data_dir / "n.jsonl", records))
    hasher = pii_hasher()

    def names(record_id):
        return {
            (records[record_id][f.start : f.end], f.recogniser)
            for f in PiiFinding.objects.filter(
                version=version, record__record_id=record_id, entity_type="PERSON"
            )
        }

    assert ("Turner, William", "LetheSurnameFirst") in names("a")
    assert ("Giles, Kathryn", "LetheSurnameFirst") in names("c")
    assert not any(recogniser == "LetheSurnameFirst" for _, recogniser in names("b"))
    whole = PiiFinding.objects.get(version=version, record__record_id="a", recogniser="LetheSurnameFirst")
    assert whole.value_hash == hasher.hash("PERSON", normalise_name("William Turner"))
    assert "surname_first_names" in version.index_configuration["postprocessing"]
