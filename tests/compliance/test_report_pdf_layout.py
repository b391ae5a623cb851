"""The report's PDF reads cleanly: no text runs out of its table cell, no action name is broken.

The layout is checked on WeasyPrint's own boxes (where each line of text sits on the page), and
every page is also rendered to PNG under ``test-artifacts/report-pages/`` for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from compliance.reports.pdf import report_html_render
from compliance.reports.services import erasure_request_complete_and_issue_report
from requests_app import services as request_services
from tests.conftest import REPO_ROOT
from tests.factories.reports import providers, request_verifying  # noqa: F401  (fixtures)

ARTIFACTS = REPO_ROOT / "test-artifacts" / "report-pages"
#: Room for rounding in WeasyPrint's positions, in CSS pixels.
SLACK = 0.5


def _issued_with_a_long_history(officer, providers):
    """A completed request whose timeline holds long action names and status changes."""
    sections = providers()
    # Only passing rows, so that completing needs no written acceptance of a failed one.
    verification = sections["verification"]
    verification["results"] = [row for row in verification["results"] if row["passed"]]
    erasure_request = request_verifying(officer)
    request_services.erasure_request_assign(erasure_request=erasure_request, actor=officer, officer=officer)
    return erasure_request_complete_and_issue_report(erasure_request=erasure_request, actor=officer)


def _boxes(box, kind):
    if isinstance(box, kind):
        yield box
    for child in getattr(box, "children", []) or []:
        yield from _boxes(child, kind)


def _events_table_cells(document):
    """Yield ``(cell, text boxes in it)`` for each body cell of the events table, on every page."""
    from weasyprint.formatting_structure import boxes

    for page in document.pages:
        for table in _boxes(page._page_box, boxes.TableBox):
            classes = (table.element.get("class") or "").split() if table.element is not None else []
            if "events" not in classes:
                continue
            for cell in _boxes(table, boxes.TableCellBox):
                if cell.element is None or cell.element.tag != "td":
                    continue
                yield cell, list(_boxes(cell, boxes.TextBox))


def test_no_text_in_the_events_table_runs_out_of_its_cell_and_no_action_breaks(officer, providers):
    from weasyprint import HTML

    report = _issued_with_a_long_history(officer, providers)
    envelope = json.loads(report.json_text)
    html = report_html_render(body=envelope["body"], signature=envelope["signature"])
    document = HTML(string=html, base_url=None).render()

    cells = list(_events_table_cells(document))
    assert len(cells) >= 5 * 8, "the events table is on the pages, one row per event"
    actions = {event["action"] for event in envelope["body"]["timeline"]["events"]}
    assert "erasure_request.identity_verified" in actions
    seen_actions = set()
    for cell, texts in cells:
        right = cell.content_box_x() + cell.width
        for text in texts:
            assert text.position_x + text.width <= right + SLACK, (
                f"{text.text!r} runs out of its cell ({text.position_x + text.width:.1f} > {right:.1f})"
            )
            if text.text in actions:
                seen_actions.add(text.text)
    # Every action name was laid out as one piece of text: none was broken across lines.
    assert seen_actions == actions


def test_every_page_of_an_issued_report_renders_to_png(officer, providers):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed; make test installs it")
    report = _issued_with_a_long_history(officer, providers)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    pdf = ARTIFACTS / "report.pdf"
    pdf.write_bytes(report.pdf_bytes)
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(ARTIFACTS / "page")], check=True)
    pages = sorted(Path(ARTIFACTS).glob("page-*.png"))
    from pypdf import PdfReader

    assert len(pages) == len(PdfReader(str(pdf)).pages) >= 2
    assert all(page.stat().st_size > 5_000 for page in pages)
