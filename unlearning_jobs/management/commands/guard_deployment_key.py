import base64

from django.core.management.base import BaseCommand, CommandError

from unlearning_jobs.models import Deployment
from unlearning_jobs.suppression.keys import deployment_hasher


class Command(BaseCommand):
    help = (
        "Print one deployment's guard key (base64) and its key id, for a serving stack outside Lethe "
        "that checks text against the deployment's exported rules. Never the PII index key."
    )

    def add_arguments(self, parser):
        parser.add_argument("deployment", help="the deployment's name")

    def handle(self, *args, **options):
        deployment = Deployment.objects.filter(name=options["deployment"]).first()
        if deployment is None:
            raise CommandError(f"No deployment is named {options['deployment']!r}.")
        hasher = deployment_hasher(deployment)
        self.stdout.write(f"key_id {hasher.key_id}")
        self.stdout.write(f"key_base64 {base64.b64encode(bytes(hasher.key)).decode('ascii')}")
