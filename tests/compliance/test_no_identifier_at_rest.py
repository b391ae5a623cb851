"""After a request has run through Lethe, a dump of the database and the logs hold none of its
subject's identifiers in clear: only the encrypted column holds them (issue 17, "Prove it")."""

from __future__ import annotations

import io
import logging
import subprocess

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from compliance.models import AuditEvent
from requests_app.at_rest import pii_at_rest_check
from requests_app.identifiers import SubjectIdentifiers
from requests_app.services import erasure_request_reveal_identifiers
from tests.factories.jobs import *  # noqa: F401,F403  (fixtures)
from tests.factories.jobs import model_train, request_reviewed
from unlearning_jobs.suppression import services as suppression
from unlearning_jobs.suppression.guard import guarded_generate

pytestmark = [pytest.mark.usefixtures("fast_jobs"), pytest.mark.slow]

SUBJECT = SubjectIdentifiers(
    names=("Ada Quill",), emails=("ada.quill@example.org",), phones=("+44 20 7946 0011",)
)
#: Every form in which the subject's identifiers could have been written down.
RAW_FORMS = (
    "Ada Quill",
    "Quill, Ada",
    "ada quill",
    "ada.quill",
    "adaquill",
    "ada.quill@example.org",
    "+44 20 7946 0011",
    "+442079460011",
    "020 7946 0011",
    "02079460011",
    "2079460011",
    "7946 0011",
)


def _dump() -> str:
    settings_dict = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "-h", settings_dict["HOST"] or "127.0.0.1"]
    if settings_dict.get("PORT"):
        command += ["-p", str(settings_dict["PORT"])]
    command += ["-U", settings_dict["USER"] or "postgres", settings_dict["NAME"]]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PGPASSWORD": settings_dict.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_database_dump_and_the_logs_hold_no_identifier_of_the_subject(
    tickets, officer, engineer, caplog, capfd, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump is PostgreSQL's")
    caplog.set_level(logging.DEBUG)
    erasure_request = request_reviewed(officer=officer, subject=SUBJECT)
    revealed = erasure_request_reveal_identifiers(
        erasure_request=erasure_request, actor=officer, reason="call back"
    )
    assert "ada.quill@example.org" in str(revealed)  # the identifiers are there, encrypted
    model = model_train(dataset_version=tickets, engineer=engineer).produced_model
    deployment = suppression.deployment_create(
        name="chat", model_version=model, policy={"mode": "redact"}, actor=engineer
    )
    suppression.suppression_rules_add_for_request(
        deployment=deployment, erasure_request=erasure_request, actor=officer
    )
    guarded = guarded_generate(
        deployment=deployment, prompt="Write to ada.quill@example.org about", max_new_tokens=4, actor=officer
    )
    assert guarded["guard"]["acted"]

    dump = _dump()
    logs = caplog.text + "".join(capfd.readouterr())
    # The scan reads what was written: the request's rows and its log lines are there.
    assert erasure_request.reference in dump and "guard.acted" in dump
    assert "erasure_request.created" in logs and "suppression_rules.added" in logs
    found = {
        form: [where for where, text in (("database", dump), ("logs", logs)) if form.lower() in text.lower()]
        for form in RAW_FORMS
    }
    assert {form: where for form, where in found.items() if where} == {}

    # The operator's check (manage.py pii_at_rest_check) agrees on the same database and logs ...
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / "web.log").write_text(logs, encoding="utf-8")
    assert pii_at_rest_check(log_paths=[log_dir]).clean
    # ... and finds an identifier that does leak, saying where without repeating it.
    (log_dir / "worker.log").write_text("DEBUG sending receipt to Quill, Ada <ADA.QUILL@example.org>\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="identifier occurrence"):
        call_command("pii_at_rest_check", "--log", str(log_dir), stdout=out)
    printed = out.getvalue()
    assert f"{erasure_request.reference}: email seen 1 time(s) in {log_dir / 'worker.log'}" in printed
    assert f"{erasure_request.reference}: name seen 1 time(s)" in printed
    assert "quill" not in printed.lower() and "database" in printed
    assert AuditEvent.objects.filter(action="identifiers.at_rest_checked").count() == 2
