"""Register a store of derived data (embeddings, caches, feature tables, retrieval indexes, profiles).

    python manage.py register_derived_store --name support-embeddings --kind embeddings \\
        --location s3://ml/support/embeddings-v3 --owner "search team" --dataset support-tickets \\
        --record-keys-file /data/lethe/embeddings-v3.ids

``--record-keys-file`` lists the ids of the data set's records the store holds something built
from, one per line (``-`` reads them from standard input); the file must lie under LETHE_DATA_DIR
or one of LETHE_IMPORT_ROOTS. A request whose confirmed records include one of them deletes the
store's entry of it (latent suppression). Unknown ids are refused and nothing is registered.
"""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from compliance.paths import PathMissing, PathNotAllowed, confined_path
from unlearning_jobs.models import Dataset, DerivedDataKind
from unlearning_jobs.suppression.latent import derived_store_register


def _record_keys(lines) -> list[str]:
    return [line.strip() for line in lines if line.strip()]


class Command(BaseCommand):
    help = "Register a derived-data store and the record ids it holds entries of (latent suppression)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", required=True, choices=DerivedDataKind.values)
        parser.add_argument("--location", required=True, help="Where the store lives (a URI, a table)")
        parser.add_argument("--owner", required=True, help="Who removes entries from it")
        parser.add_argument("--dataset", default=None, help="Name or id of the data set it was built from")
        parser.add_argument(
            "--record-keys-file", default=None, metavar="PATH", help="Record ids, one per line; - for stdin"
        )
        parser.add_argument(
            "--user", default=None, help="Username recorded as registrant (default: the system); an engineer"
        )

    def handle(self, *args, name, kind, location, owner, dataset, record_keys_file, user, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user {user!r}.")
        chosen = None
        if dataset:
            lookup = {"pk": int(dataset)} if dataset.isdecimal() else {"name": dataset}
            chosen = Dataset.objects.filter(**lookup).first()
            if chosen is None:
                raise CommandError(f"No data set {dataset!r}.")
        keys: list[str] = []
        if record_keys_file == "-":
            keys = _record_keys(sys.stdin)
        elif record_keys_file:
            try:
                path = confined_path(record_keys_file)
            except (PathNotAllowed, PathMissing) as error:
                raise CommandError(f"--record-keys-file: {error}") from None
            with path.open(encoding="utf-8") as handle:
                keys = _record_keys(handle)
        try:
            store = derived_store_register(
                name=name,
                kind=kind,
                location=location,
                owner=owner,
                dataset=chosen,
                record_keys=keys,
                actor=actor,
            )
        except (ValidationError, PermissionDenied) as error:
            messages = getattr(error, "messages", None) or [str(error)]
            raise CommandError(" ".join(messages)) from None
        self.stdout.write(
            f"Registered derived-data store #{store.pk} {store.name!r} with {store.entries.count()} record keys."
        )
