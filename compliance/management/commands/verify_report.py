from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.reports.verification import MAX_REPORT_BYTES, report_file_verify


class Command(BaseCommand):
    help = (
        "Check a downloaded audit report (JSON or PDF) against its signature and the stored record; "
        "exit non-zero on any change."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the report file, .json or .pdf")
        parser.add_argument(
            "--signature-only",
            action="store_true",
            help="JSON only: check the signature with this Lethe's key, not the stored record",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise CommandError(
                f"{path} is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB; no report is."
            )
        result = report_file_verify(path.read_bytes(), check_stored=not options["signature_only"])
        for check in result.checks:
            mark = "ok  " if check.ok else "FAIL"
            self.stdout.write(f"{mark} {check.name}: {check.detail}")
        if not result.ok:
            raise CommandError(f"{path.name} does NOT verify: {result.first_problem}")
        note = f"; superseded by {result.superseded_by}" if result.superseded_by else ""
        self.stdout.write(
            self.style.SUCCESS(f"{path.name} verifies: {result.report_id} ({result.kind}){note}.")
        )
