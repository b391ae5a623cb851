from django.core.management.base import BaseCommand, CommandError

from requests_app.identifiers import IdentifierDecryptionError
from requests_app.services import erasure_requests_rehash_identifiers
from unlearning_jobs.datasets.indexing import dataset_version_index_inline, dataset_versions_rekey
from unlearning_jobs.models import DatasetVersion


class Command(BaseCommand):
    help = (
        "After LETHE_PII_HASH_KEY (and LETHE_PII_HASH_KEY_ID) changed: re-hash every request's "
        "identifier hashes from its encrypted identifiers and queue every data-set version indexed "
        "under the old key to be indexed again (docs/security.md, 'Keys and their rotation')."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--inline",
            action="store_true",
            help="index the versions in this process instead of queueing their chunks to cpu workers",
        )
        parser.add_argument("--processes", type=int, default=1, help="scan processes with --inline")

    def handle(self, *args, **options):
        try:
            requests = erasure_requests_rehash_identifiers(actor=None)
        except IdentifierDecryptionError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Re-hashed the identifiers of {requests['rehashed']} request(s) under key {requests['key_id']}."
        )
        if requests["purged"]:
            self.stderr.write(
                f"{requests['purged']} request(s) had their identifiers purged and keep hashes under the old key."
            )
        versions = dataset_versions_rekey(actor=None, enqueue=not options["inline"])
        if not options["inline"]:
            self.stdout.write(f"Queued {len(versions)} data-set version(s) to be indexed under the new key.")
            return
        for version in DatasetVersion.objects.filter(pk__in=versions).order_by("pk"):
            progress = dataset_version_index_inline(version=version, processes=options["processes"])
            self.stdout.write(f"{version}: {progress['findings']} finding(s) under the new key.")
