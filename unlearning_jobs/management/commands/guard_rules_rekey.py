from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from unlearning_jobs.suppression.services import deployment_list, deployment_rules_rekey


class Command(BaseCommand):
    help = (
        "Hash every deployment's active guard rules under the deployment's own key (derived from "
        "LETHE_GUARD_MASTER_KEY) as a new version: after the master key changed, or for rules made "
        "under the PII index key (docs/security.md, 'Keys and their rotation')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--deployment", help="only the deployment of this name")

    def handle(self, *args, **options):
        deployments = deployment_list()
        if options["deployment"]:
            deployments = deployments.filter(name=options["deployment"])
            if not deployments.exists():
                raise CommandError(f"No deployment is named {options['deployment']!r}.")
        failed = 0
        for deployment in deployments:
            try:
                rule_set = deployment_rules_rekey(deployment=deployment, actor=None)
            except ValidationError as error:
                failed += 1
                self.stderr.write(f"{deployment.name}: {' '.join(error.messages)}")
                continue
            if rule_set is None:
                self.stdout.write(f"{deployment.name}: already under its own key.")
            else:
                self.stdout.write(f"{deployment.name}: re-keyed as v{rule_set.version} ({rule_set.key_id}).")
        if failed:
            raise CommandError(f"{failed} deployment(s) could not be re-keyed.")
