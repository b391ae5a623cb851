"""Register a data-set file as a new version, wait for its PII index, and print what was found.

    python manage.py ingest_dataset --name support-tickets --path data/tickets.jsonl
    python manage.py ingest_dataset --name tofu --path ../shared/data/tofu/full.json \\
        --text-field question,answer --inline --processes 2

Without ``--inline`` the chunks go to the ``cpu`` queue and the command polls the database until
the index is complete; it refuses to start when no worker consuming ``cpu`` has sent a heartbeat
recently, rather than wait for nobody. ``--resume VERSION_ID`` re-queues a version's unfinished
chunks (after a crash) and waits for them.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.queues import WorkQueue
from unlearning_jobs.datasets import indexing
from unlearning_jobs.datasets import services as datasets
from unlearning_jobs.models import DatasetVersion, DatasetVersionStatus, WorkerHeartbeat
from unlearning_jobs.workers.services import worker_is_alive


class Command(BaseCommand):
    help = "Register a data-set file (JSONL, JSON, CSV, Parquet, text), index it, print counts."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="Data set name (created on first use)")
        parser.add_argument(
            "--path", help="File to register; must be under LETHE_DATA_DIR or LETHE_IMPORT_ROOTS"
        )
        parser.add_argument(
            "--format", default=None, help="jsonl, json, csv, parquet or text (default: by extension)"
        )
        parser.add_argument(
            "--text-field",
            default="text",
            help="Field holding the text; several joined by newlines: question,answer",
        )
        parser.add_argument(
            "--id-field", default=None, help="Field holding the record's own id (default: content hash)"
        )
        parser.add_argument("--description", default="")
        parser.add_argument("--chunk-size", type=int, default=None, help="Records per indexing task")
        parser.add_argument("--inline", action="store_true", help="Index in this process; no worker needed")
        parser.add_argument("--processes", type=int, default=1, help="Scan processes with --inline")
        parser.add_argument(
            "--timeout", type=float, default=3600.0, help="Seconds to wait for a worker-built index"
        )
        parser.add_argument(
            "--resume", type=int, metavar="VERSION_ID", help="Re-queue a version's unfinished chunks"
        )

    def handle(self, *args, **options):
        inline = options["inline"]
        if not inline and not self._cpu_worker_alive():
            raise CommandError(
                "No worker consuming the 'cpu' queue has sent a heartbeat recently, so nobody would "
                "index the data set. Start one (celery -A compliance worker -Q cpu) or use --inline."
            )
        if options["resume"]:
            version = DatasetVersion.objects.filter(pk=options["resume"]).first()
            if version is None:
                raise CommandError(f"No data-set version has id {options['resume']}.")
            queued = indexing.dataset_version_index_resume(version=version, actor=None, enqueue=not inline)
            self.stdout.write(f"{version}: {len(queued)} unfinished chunk(s) to index.")
        else:
            if not options["name"] or not options["path"]:
                raise CommandError("Give --name and --path (or --resume VERSION_ID).")
            try:
                version = datasets.dataset_version_register(
                    name=options["name"],
                    path=options["path"],
                    actor=None,
                    format=options["format"],
                    text_field=options["text_field"],
                    id_field=options["id_field"],
                    description=options["description"],
                    chunk_size=options["chunk_size"],
                    enqueue=not inline,
                )
            except datasets.DatasetRegistrationError as error:
                raise CommandError(" ".join(error.messages)) from None
            self.stdout.write(
                f"Registered {version} (id {version.pk}): {version.record_count} records, "
                f"file sha256 {version.file_sha256[:16]}…, manifest sha256 {version.manifest_sha256[:16]}…, "
                f"{version.chunks.count()} chunk(s) of {version.chunk_size}."
            )
        started = time.monotonic()
        if inline:
            progress = indexing.dataset_version_index_inline(
                version=version, processes=options["processes"], progress=self._report
            )
        else:
            progress = self._wait(version, timeout=options["timeout"])
        version.refresh_from_db()
        if version.status != DatasetVersionStatus.INDEXED:
            state = version.get_status_display().lower()
            raise CommandError(
                f"{version} is {state}: {version.error or 'see its chunks on the data-set page'}"
            )
        self._summary(version, progress, seconds=time.monotonic() - started)

    def _cpu_worker_alive(self) -> bool:
        now = timezone.now()
        return any(
            WorkQueue.CPU.value in heartbeat.queues and worker_is_alive(heartbeat, now=now)
            for heartbeat in WorkerHeartbeat.objects.all()
        )

    def _report(self, progress: dict) -> None:
        rate = f", {progress['records_per_second']} records/s" if progress["records_per_second"] else ""
        self.stdout.write(
            f"  {progress['chunks_done']}/{progress['chunks_total']} chunks, "
            f"{progress['records_done']}/{progress['records_total']} records{rate}"
        )

    def _wait(self, version: DatasetVersion, *, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        last_done = -1
        while True:
            version.refresh_from_db()
            progress = indexing.dataset_version_progress(version)
            if progress["chunks_done"] != last_done:
                self._report(progress)
                last_done = progress["chunks_done"]
            if version.status in (DatasetVersionStatus.INDEXED, DatasetVersionStatus.FAILED):
                return progress
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{version} is not indexed after {timeout:.0f}s ({progress['chunks_done']}/"
                    f"{progress['chunks_total']} chunks). Indexing goes on in the workers; resume "
                    f"waiting with --resume {version.pk}."
                )
            if not self._cpu_worker_alive():
                raise CommandError(
                    f"Every 'cpu' worker stopped sending heartbeats with {version} at "
                    f"{progress['chunks_done']}/{progress['chunks_total']} chunks; start a worker "
                    f"and run --resume {version.pk}."
                )
            time.sleep(1.0)

    def _summary(self, version: DatasetVersion, progress: dict, *, seconds: float) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                f"{version} indexed: {version.record_count} records, {progress['findings']} findings, "
                f"{progress['dropped']} values dropped as unnormalisable, in {seconds:.1f}s "
                f"({progress['records_per_second'] or 0} records/s)."
            )
        )
        for entity_type, count in progress["findings_by_type"].items():
            self.stdout.write(f"  {entity_type:<14} {count}")
        hits = version.reingestion_hits.filter(overridden_at__isnull=True).count()
        if hits:
            self.stdout.write(
                self.style.WARNING(
                    f"  {hits} record(s) hold an erased person's identifier: they are flagged and left "
                    "out of the records offered for training."
                )
            )
