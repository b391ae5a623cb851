from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from compliance.tokens import api_token_create


class Command(BaseCommand):
    help = (
        "Make an API token for a user and print it once: Lethe stores only its SHA-256, so it cannot "
        "be shown again. It expires after LETHE_API_TOKEN_DAYS days unless --days says otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for (shown in lists)")
        parser.add_argument("--days", type=int, default=None, help="days until it expires")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user is named {options['username']!r}.")
        try:
            token, raw = api_token_create(user=user, actor=None, name=options["name"], days=options["days"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(raw)
        self.stderr.write(f"Expires {token.expires_at:%Y-%m-%d %H:%M %Z}; shown once, store it now.")
