"""An upload over LETHE_UPLOAD_MAX_BYTES stops while it streams in, before Django spools it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.urls import reverse

from tests.factories.jobs import data_dir  # noqa: F401  (fixture)
from unlearning_jobs.models import DatasetVersion

pytestmark = pytest.mark.django_db


class RecordingHandler(FileUploadHandler):
    """Stands where Django's spooling handlers stand: counts the file bytes that reach them."""

    received = 0

    def receive_data_chunk(self, raw_data, start):
        RecordingHandler.received += len(raw_data)
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.fixture
def recorded(settings):
    settings.FILE_UPLOAD_HANDLERS = [
        "compliance.uploads.SizeLimitedUploadHandler",
        "tests.compliance.test_uploads.RecordingHandler",
        *settings.FILE_UPLOAD_HANDLERS[1:],
    ]
    RecordingHandler.received = 0
    return RecordingHandler


def _upload(client, size: int):
    line = b'{"text": "' + b"x" * 87 + b'"}\n'  # 100 bytes
    body = line * (size // len(line))
    return client.post(
        reverse("datasets:upload"),
        {"name": "big", "file": SimpleUploadedFile("big.jsonl", body), "text_field": "text"},
    )


@pytest.mark.parametrize(
    ("size", "reaches_spooling"),
    [
        (150_000, range(1, 100_001)),  # streamed: cut off at the chunk that crosses the limit
        (5_000_000, range(0, 1)),  # declared length already over the limit: not read at all
    ],
)
def test_an_upload_over_the_limit_is_cut_off_before_it_is_spooled(
    client, data_dir, engineer, settings, recorded, size, reaches_spooling
):
    settings.LETHE_UPLOAD_MAX_BYTES = 100_000
    client.force_login(engineer)
    response = _upload(client, size)

    assert response.status_code == 400
    assert "over the upload limit of 100,000 bytes" in response.content.decode()
    assert recorded.received in reaches_spooling
    assert not DatasetVersion.objects.exists()
    assert not (data_dir / "uploads").exists() or not list((data_dir / "uploads").glob("*/*"))


def test_an_upload_within_the_limit_passes_through_whole(client, data_dir, engineer, settings, recorded):
    settings.LETHE_UPLOAD_MAX_BYTES = 100_000
    client.force_login(engineer)
    response = _upload(client, 90_000)
    assert response.status_code == 302, response.content.decode()[:500]
    assert recorded.received == 90_000
