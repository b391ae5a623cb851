"""Import a pretrained model (a .gguf file or a Hugging Face checkpoint directory) as a base version.

    python manage.py import_model --name smollm2-135m /models/SmolLM2-135M-Instruct.Q4_1.gguf
    python manage.py import_model --name smollm2-135m --here /models/SmolLM2-135M-Instruct.Q4_1.gguf

The conversion to an fp32 safetensors directory under LETHE_DATA_DIR/models runs as an ``import``
job on the gpu queue (``--here``: in this process, as a worker would, and waits for it). The
source must lie under LETHE_DATA_DIR or one of LETHE_IMPORT_ROOTS; the version records its SHA-256.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from unlearning_jobs.finetuning.services import model_import_job_create
from unlearning_jobs.jobs.runner import job_run_inline
from unlearning_jobs.registry.services import ModelRegistrationError


class Command(BaseCommand):
    help = "Import a .gguf file or a Hugging Face checkpoint directory as a base model version (a job)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="A .gguf file or a checkpoint directory (config.json + weights)")
        parser.add_argument("--name", required=True, help="Name shown in the registry")
        parser.add_argument("--notes", default="")
        parser.add_argument(
            "--here", action="store_true", help="Run the conversion in this process and wait for it"
        )
        parser.add_argument(
            "--user",
            default=None,
            help="Username recorded as the job's creator (default: the system); needs the engineer's role",
        )

    def handle(self, *args, path, name, notes, here, user, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user {user!r}.")
        try:
            job = model_import_job_create(name=name, path=path, actor=actor, notes=notes, enqueue=not here)
        except ModelRegistrationError as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
            ) from None
        self.stdout.write(f"import job {job.pk} queued for {path}\n")
        if not here:
            return
        status = job_run_inline(job=job)
        job.refresh_from_db()
        if status != "succeeded":
            raise CommandError(f"import job {job.pk} {status}: {job.error or job.log[-500:]}")
        version = job.produced_model
        self.stdout.write(
            f"model version {version.pk}: {version.name} ({version.kind}, {version.architecture}, "
            f"{version.parameter_count} parameters)\npath   {version.path}\nsha256 {version.weights_sha256}\n"
            f"source sha256 {version.source_sha256}\n"
        )
