from django.core.management.base import BaseCommand, CommandError

from compliance.models import ApiToken
from compliance.tokens import api_token_revoke


class Command(BaseCommand):
    help = "Revoke an API token by the prefix shown when it was made (lethe_xxxxxx); it never authenticates again."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, **options):
        tokens = list(ApiToken.objects.filter(prefix=options["prefix"], revoked_at__isnull=True))
        if len(tokens) != 1:
            raise CommandError(
                f"{len(tokens)} unrevoked tokens have the prefix {options['prefix']!r}: give exactly one."
            )
        api_token_revoke(token=tokens[0], actor=None)
        self.stdout.write(f"Revoked {tokens[0].prefix}… of {tokens[0].user}.")
