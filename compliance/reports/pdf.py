"""The report's PDF: the body laid out for a person (summary first, then detail), by WeasyPrint.

The report id, status, body SHA-256, body signature and key id go into the PDF's metadata (and
the id and SHA-256 into every page's footer), so ``verify_report`` can find the stored record a
PDF claims to be and check it; the PDF file's own SHA-256 and Ed25519 signature are stored beside it.
"""

from __future__ import annotations

import io

from django.template.loader import render_to_string

from compliance.reports.display import report_display_context

PDF_MEDIA_TYPE = "application/pdf"
# WeasyPrint writes <meta name="lethe-report-id"> as the metadata key /lethereportid.
METADATA_REPORT_ID = "/lethereportid"
METADATA_STATUS = "/lethestatus"
METADATA_BODY_SHA256 = "/lethebodysha256"
METADATA_BODY_HMAC = "/lethebodyhmac"  # reports issued before Ed25519
METADATA_BODY_SIGNATURE = "/lethebodysignature"
METADATA_KEY_ID = "/lethekeyid"


def report_html_render(*, body: dict, signature: dict | None) -> str:
    """Return the standalone HTML the PDF is printed from."""
    context = report_display_context(body=body, signature=signature)
    return render_to_string("compliance/report_pdf.html", context)


def report_pdf_render(*, body: dict, signature: dict | None) -> bytes:
    """Return the PDF of ``body``; a draft gets a watermark on every page and no signature."""
    from weasyprint import HTML

    html = report_html_render(body=body, signature=signature)
    return HTML(string=html, base_url=None).write_pdf(custom_metadata=True)


def report_pdf_metadata(data: bytes) -> dict[str, str]:
    """Return the Lethe entries of a PDF's metadata; raise ``ValueError`` when it cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        metadata = reader.metadata or {}
        pages = len(reader.pages)
    except (PdfReadError, OSError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"the PDF cannot be read ({type(error).__name__})") from None
    if pages == 0:
        raise ValueError("the PDF has no pages")
    return {
        key: str(metadata[key])
        for key in (
            METADATA_REPORT_ID,
            METADATA_STATUS,
            METADATA_BODY_SHA256,
            METADATA_BODY_HMAC,
            METADATA_BODY_SIGNATURE,
            METADATA_KEY_ID,
        )
        if key in metadata
    }
