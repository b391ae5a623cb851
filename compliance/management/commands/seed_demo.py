from django.conf import settings
from django.core.management.base import BaseCommand

from compliance.demo import DEMO_USERS, demo_seed
from compliance.demo_story import demo_story_send, demo_story_summary


class Command(BaseCommand):
    help = (
        "Create the demo users (one per role), data set (registered and PII-indexed) and the "
        "demo model trained on it. Safe to re-run: what exists is left as it is."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-model",
            action="store_true",
            help="Do not train the demo model (it takes a few minutes on a CPU).",
        )
        parser.add_argument(
            "--queue-model",
            action="store_true",
            help="Queue the demo model's training on the gpu queue for a worker "
            "instead of training it here before returning.",
        )
        parser.add_argument(
            "--no-index",
            action="store_true",
            help="Only write the files: neither register nor index the data set (implies --no-model).",
        )

    def handle(self, *args, **options):
        with_index = not options["no_index"]
        with_model = with_index and not options["no_model"]
        if with_model and not options["queue_model"]:
            self.stdout.write(
                "Seeding the demo: indexing the data set and training the demo model "
                "if they are not there yet (a few minutes on a CPU the first time)..."
            )
        result = demo_seed(with_index=with_index, with_model=with_model, queue_model=options["queue_model"])
        if result.created_users:
            self.stdout.write(self.style.SUCCESS(f"Created users: {', '.join(result.created_users)}"))
            if not settings.LETHE_DEMO_PASSWORD:
                credentials = settings.VAR_DIR / "demo_credentials"
                credentials.write_text(result.password + "\n")
                credentials.chmod(0o600)
                self.stdout.write(
                    f"Generated demo password (shown once; kept for `make run` in {credentials}): "
                    f"{result.password}"
                )
        else:
            self.stdout.write(f"Demo users already exist: {', '.join(DEMO_USERS)}")
        state = "written" if result.dataset_created else "already present"
        self.stdout.write(f"Demo data set {state}: {result.record_count} records at {result.records_path}")
        self.stdout.write(f"Ground truth: {result.ground_truth_path}")
        if result.dataset_version_id:
            state = "registered and indexed" if result.dataset_registered else "already registered"
            self.stdout.write(
                f"Data set version #{result.dataset_version_id} {state}: "
                f"{result.findings} PII findings (keyed hashes) in the index"
            )
        if result.model_version_id:
            state = f"trained in {result.model_seconds:.0f} s" if result.model_trained else "already trained"
            self.stdout.write(f"Demo model version #{result.model_version_id} {state}")
        elif result.model_job_id:
            self.stdout.write(
                f"Demo model training is job #{result.model_job_id} "
                f"({result.model_job_status}): a worker trains it; watch it on the job queue page."
            )
        if result.model_version_id and settings.LETHE_DEMO_STORY:
            # Idempotent: a story already told is left as it is; one not yet started starts now.
            demo_story_send()
            story = demo_story_summary()
            if story:
                told = ", ".join(f"{part} {reference}" for part, reference in story.items())
                self.stdout.write(f"Demo story: {told}")
            else:
                self.stdout.write("Demo story: queued for the cpu worker.")
        elif result.model_job_id and settings.LETHE_DEMO_STORY:
            self.stdout.write("Demo story: starts on the cpu worker once the demo model has trained.")
