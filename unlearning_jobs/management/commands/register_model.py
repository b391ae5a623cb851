"""Register an existing checkpoint directory as a model version, with the SHA-256 of its weights.

    python manage.py register_model --name customer-support-gpt2 --path /models/support-v3 \\
        --dataset-version 7 --notes "production model, deployed 2026-10"

The directory stays where it is; it must lie under LETHE_DATA_DIR or one of LETHE_IMPORT_ROOTS.
Without ``--dataset-version`` the model can be unlearnt only approximately or suppressed: exact
methods (retrain, SISA) need the data it was trained on.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from unlearning_jobs.models import DatasetVersion, ModelVersion
from unlearning_jobs.registry.services import ModelRegistrationError, model_version_register


class Command(BaseCommand):
    help = "Register a Hugging Face causal-LM (or SISA) checkpoint directory as a model version."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Name shown in the registry")
        parser.add_argument(
            "--path", required=True, help="Checkpoint directory (config.json + weights, or sisa.json)"
        )
        parser.add_argument(
            "--dataset-version",
            type=int,
            default=None,
            metavar="ID",
            help="Data-set version the model was trained on",
        )
        parser.add_argument(
            "--parent", type=int, default=None, metavar="ID", help="Model version it derives from"
        )
        parser.add_argument("--notes", default="")
        parser.add_argument(
            "--user",
            default=None,
            help="Username recorded as registrant (default: the system); needs the engineer's role",
        )

    def handle(self, *args, name, path, dataset_version, parent, notes, user, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user {user!r}.")
        version = None
        if dataset_version is not None:
            version = DatasetVersion.objects.filter(pk=dataset_version).first()
            if version is None:
                raise CommandError(f"No data-set version with id {dataset_version}.")
        parent_version = None
        if parent is not None:
            parent_version = ModelVersion.objects.filter(pk=parent).first()
            if parent_version is None:
                raise CommandError(f"No model version with id {parent}.")
        try:
            registered = model_version_register(
                name=name, path=path, actor=actor, dataset_version=version, parent=parent_version, notes=notes
            )
        except ModelRegistrationError as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
            ) from None
        self.stdout.write(
            f"model version {registered.pk}: {registered.name} ({registered.kind})\n"
            f"path   {registered.path}\nsha256 {registered.weights_sha256}\n"
        )
