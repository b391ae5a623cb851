"""Are the subjects' identifiers anywhere in clear? A scan of a database dump and the log files.

Lethe keeps a person's identifiers encrypted in one column (``identifiers_encrypted``) and keyed
hashes everywhere else. A bug, a debug log line, a job log or a model output stored verbatim
would break that silently; this scan is how an operator (and issue 17's proof) finds out. It
decrypts every request's identifiers in memory, derives the raw forms in which they could have
been written down (a name as "Ada Quill", "Quill, Ada", "ada.quill"; a phone in E.164, national
and international notation; an e-mail and a distinctive local part), and searches a plain-text
dump of the whole database (``pg_dump --data-only`` on PostgreSQL, ``iterdump`` on SQLite) and
every log file, line by line, with one case-insensitive pattern. What it reports is where and how
often a request's form of a kind was seen: never the value. The run is an audit event, because it
reads every subject's identifiers.

Forms too generic to mean anything alone are not searched: one-word names, dates of birth, e-mail
local parts under six characters, digit runs under nine.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
from django.conf import settings
from django.db import connection, transaction

from compliance.audit import audit_event_record
from requests_app.identifiers import SubjectIdentifiers, identifiers_decrypt
from requests_app.models import ErasureRequest

MIN_LOCAL_PART = 6
MIN_DIGITS = 9
MIN_FREE_TEXT = 10
DUMP_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class RawForm:
    """One way a request's identifier could appear in clear; ``text`` stays in memory only."""

    reference: str
    kind: str
    text: str


@dataclass
class AtRestReport:
    """What a scan found: hits counted by (request reference, identifier kind, where)."""

    requests_checked: int = 0
    requests_purged: int = 0
    forms_searched: int = 0
    lines_scanned: Counter = field(default_factory=Counter)
    hits: Counter = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        return not self.hits


def _name_forms(name: str) -> Iterator[str]:
    words = name.split()
    if len(words) < 2:
        return
    first, last = words[0], words[-1]
    yield " ".join(words)
    yield f"{last}, {' '.join(words[:-1])}"
    yield f"{first}.{last}"
    yield f"{first}{last}"


def _phone_forms(value: str, region: str) -> Iterator[str]:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        digits = re.sub(r"\D", "", value)
        if len(digits) >= MIN_DIGITS:
            yield digits
        return
    for style in (
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    ):
        formatted = phonenumbers.format_number(number, style)
        yield formatted
        yield re.sub(r"[^\d+]", "", formatted)
    national = str(number.national_number)
    if len(national) >= MIN_DIGITS:
        yield national


def identifier_raw_forms(subject: SubjectIdentifiers, *, reference: str, phone_region: str) -> list[RawForm]:
    """Return the raw forms of a subject's identifiers worth searching for, without repeats."""
    found: dict[tuple[str, str], RawForm] = {}

    def add(kind: str, text: str) -> None:
        text = text.strip()
        if text:
            found.setdefault((kind, text.lower()), RawForm(reference=reference, kind=kind, text=text))

    for name in subject.names:
        for form in _name_forms(name):
            add("name", form)
    for email in subject.emails:
        add("email", email)
        local = email.split("@", 1)[0]
        if len(local) >= MIN_LOCAL_PART:
            add("email local part", local)
    for phone in subject.phones:
        for form in _phone_forms(phone, phone_region):
            add("phone", form)
    for address in subject.addresses:
        if len(address) >= MIN_FREE_TEXT:
            add("address", address)
    for account in subject.account_ids:
        if len(account) >= MIN_LOCAL_PART:
            add("account id", account)
    return list(found.values())


def _piece(form: str) -> str:
    """A form as a pattern that does not match inside a longer word or number."""
    before = r"(?<![\w+])" if form[0].isalnum() or form[0] == "+" else ""
    after = r"(?!\w)" if form[-1].isalnum() else ""
    return before + re.escape(form) + after


class FormScanner:
    """One case-insensitive pattern over every form; each hit is traced back to its forms."""

    def __init__(self, forms: Iterable[RawForm]):
        self.by_text: dict[str, list[RawForm]] = {}
        for form in forms:
            self.by_text.setdefault(form.text.lower(), []).append(form)
        ordered = sorted(self.by_text, key=len, reverse=True)  # the longest form of a place wins
        self.pattern = (
            re.compile("|".join(_piece(text) for text in ordered), re.IGNORECASE) if ordered else None
        )

    def scan(self, lines: Iterable[str], *, where: str, report: AtRestReport) -> None:
        for line in lines:
            report.lines_scanned[where] += 1
            if self.pattern is None:
                continue
            for match in self.pattern.finditer(line):
                for form in self.by_text.get(match.group(0).lower(), ()):
                    report.hits[(form.reference, form.kind, where)] += 1


def database_dump_lines() -> Iterator[str]:
    """Yield a plain-text dump of the whole database, a line at a time (data only)."""
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        yield from connection.connection.iterdump()
        return
    if connection.vendor != "postgresql":
        raise RuntimeError(f"no dump for a {connection.vendor} database")
    options = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "-h", options["HOST"] or "127.0.0.1"]
    if options.get("PORT"):
        command += ["-p", str(options["PORT"])]
    command += ["-U", options["USER"] or "postgres", options["NAME"]]
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "PGPASSWORD": options.get("PASSWORD") or ""}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as dump:
        assert dump.stdout is not None
        yield from dump.stdout
        _, errors = dump.communicate(timeout=DUMP_TIMEOUT_SECONDS)
    if dump.returncode != 0:
        raise RuntimeError(f"pg_dump failed ({dump.returncode}): {errors.strip()[:500]}")


def log_files(paths: Iterable[Path]) -> list[Path]:
    """Return the files named, and every file under the folders named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.append(path)
    return found


def pii_at_rest_check(*, log_paths: Iterable[Path] | None = None, actor=None) -> AtRestReport:
    """Scan the database and the logs for every request's identifiers in clear; audit the run."""
    report = AtRestReport()
    forms: list[RawForm] = []
    for reference, token, purged_at in ErasureRequest.objects.values_list(
        "reference", "identifiers_encrypted", "identifiers_purged_at"
    ).iterator():
        if purged_at is not None or not token:
            report.requests_purged += 1
            continue
        report.requests_checked += 1
        forms += identifier_raw_forms(
            identifiers_decrypt(token), reference=reference, phone_region=settings.LETHE_PHONE_REGION
        )
    report.forms_searched = len(forms)
    scanner = FormScanner(forms)
    scanner.scan(database_dump_lines(), where="database", report=report)
    paths = [Path(settings.VAR_DIR) / "log"] if log_paths is None else list(log_paths)
    for path in log_files(paths):
        with path.open(encoding="utf-8", errors="replace") as handle:
            scanner.scan(handle, where=str(path), report=report)
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="identifiers.at_rest_checked",
            object_type="database",
            details={
                "requests_checked": report.requests_checked,
                "requests_purged": report.requests_purged,
                "forms_searched": report.forms_searched,
                "places_scanned": len(report.lines_scanned),
                "hits": sum(report.hits.values()),
            },
        )
    return report
