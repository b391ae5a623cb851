from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from requests_app.at_rest import pii_at_rest_check


class Command(BaseCommand):
    help = (
        "Search a dump of the whole database and the log files for every request's identifiers in "
        "clear (names, e-mails, phones in their usual notations, addresses, account ids). Prints "
        "where and how often, never the values; exits 1 when anything is found. One audit event."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--log",
            action="append",
            type=Path,
            default=None,
            help="A log file or folder to search (repeatable; default LETHE_VAR_DIR/log).",
        )

    def handle(self, *args, log=None, **options):
        try:
            report = pii_at_rest_check(log_paths=log)
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Searched {report.forms_searched} forms of the identifiers of {report.requests_checked} "
            f"request(s) ({report.requests_purged} purged, not searched) in {len(report.lines_scanned)} "
            f"place(s), {sum(report.lines_scanned.values())} lines."
        )
        for where, lines in sorted(report.lines_scanned.items()):
            self.stdout.write(f"  {where}: {lines} lines")
        if report.clean:
            self.stdout.write(self.style.SUCCESS("No identifier in clear outside the encrypted column."))
            return
        for (reference, kind, where), count in sorted(report.hits.items()):
            self.stdout.write(self.style.ERROR(f"  {reference}: {kind} seen {count} time(s) in {where}"))
        raise CommandError(f"{sum(report.hits.values())} identifier occurrence(s) in clear.")
