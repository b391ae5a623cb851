"""Stop reading an upload once it is over ``LETHE_UPLOAD_MAX_BYTES``, instead of after Django spooled it.

Django's own handlers write a whole uploaded file to memory or a temporary file before a view can
look at its size, so a 20 GB upload fills the disk first and is refused after. This handler runs
first (``FILE_UPLOAD_HANDLERS``): a request whose declared length is already over the limit is not
read at all, and a file that grows past it while streaming stops the parse there. The view then
finds ``upload_refusal(request)`` and says so; nothing was saved.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

#: Room for the form's other fields and the multipart boundaries around the file.
FORM_SLACK_BYTES = 64 * 1024
_REFUSAL = "lethe_upload_refused_bytes"


def upload_refusal(request) -> str | None:
    """Return why the request's upload was cut off, or None when it was read whole."""
    size = getattr(request, _REFUSAL, None)
    if size is None:
        return None
    limit = settings.LETHE_UPLOAD_MAX_BYTES
    return (
        f"The upload is over the upload limit of {limit:,} bytes (at least {size:,} bytes were sent); "
        "register larger files by path (ingest_dataset)."
    )


class SizeLimitedUploadHandler(FileUploadHandler):
    """Pass file data on to the next handlers until the files exceed the limit, then stop."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        if content_length and content_length > settings.LETHE_UPLOAD_MAX_BYTES + FORM_SLACK_BYTES:
            setattr(self.request, _REFUSAL, content_length)
            # Answering without parsing: no field and no file, and not a byte of the body read.
            return QueryDict(), MultiValueDict()
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received = getattr(self, "received", 0) + len(raw_data)
        if self.received > settings.LETHE_UPLOAD_MAX_BYTES:
            setattr(self.request, _REFUSAL, self.received)
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None
