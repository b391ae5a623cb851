from django.core.management.base import BaseCommand, CommandError

from requests_app.identifiers import IdentifierDecryptionError
from requests_app.services import erasure_requests_rotate_identifier_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every request's identifiers under the first key of LETHE_IDENTIFIER_KEYS; "
        "afterwards the older keys can be removed (docs/workflow.md)."
    )

    def handle(self, *args, **options):
        try:
            rotated = erasure_requests_rotate_identifier_keys()
        except IdentifierDecryptionError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Re-encrypted the identifiers of {rotated} request(s) under the first key.")
