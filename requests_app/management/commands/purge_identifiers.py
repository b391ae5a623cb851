from django.core.management.base import BaseCommand, CommandError

from requests_app.services import ErasureRequestError, erasure_requests_purge_identifiers


class Command(BaseCommand):
    help = (
        "Erase the identifiers of requests closed longer than LETHE_RETENTION_DAYS, keeping "
        "their keyed hashes; one audit event per request."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--retention-days", type=int, default=None, help="Override LETHE_RETENTION_DAYS for this run."
        )

    def handle(self, *args, retention_days=None, **options):
        try:
            purged = erasure_requests_purge_identifiers(retention_days=retention_days)
        except ErasureRequestError as error:
            raise CommandError("; ".join(error.messages)) from None
        if purged:
            self.stdout.write(f"Purged the identifiers of {len(purged)} request(s): {', '.join(purged)}")
        else:
            self.stdout.write("No closed request is past the retention period.")
