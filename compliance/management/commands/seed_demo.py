from django.conf import settings
from django.core.management.base import BaseCommand

from compliance.demo import DEMO_USERS, demo_seed


class Command(BaseCommand):
    help = "Create the demo users (one per role), data set and ground truth. Safe to re-run."

    def handle(self, *args, **options):
        result = demo_seed()
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
