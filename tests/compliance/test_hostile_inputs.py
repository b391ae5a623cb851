"""Hostile inputs through the real pages and the API: each gives a clear 400 and saves nothing.

Huge fields, control characters and NUL bytes (PostgreSQL refuses NUL in text), HTML and
JavaScript in names (which must come out escaped), SQL-looking strings (which are just text),
and paths that climb out of the allowed folders, directly or through a symbolic link. "Saves
nothing" is checked on the rows that registration or creation would write and on the audit
log, which every write of Lethe's goes through.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from compliance.models import AuditEvent
from requests_app.models import ErasureRequest
from tests.factories.api_world import api_token, tiny_checkpoint
from tests.factories.jobs import data_dir, run_inline, write_jsonl  # noqa: F401  (fixtures)
from unlearning_jobs.models import Dataset, DatasetVersion, ModelVersion, UnlearningJob

pytestmark = [pytest.mark.django_db]

SCRIPT_NAME = "<script>alert('lethe')</script>"
IMG_NAME = '<img src=x onerror="alert(1)">'
SQL_NAME = "Robert'); DROP TABLE requests_app_erasurerequest; --"


@pytest.fixture
def api(role_users):
    def client_for(role: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(role_users[role])}")
        return client

    return client_for


@pytest.fixture
def page(role_users):
    def client_for(role: str) -> Client:
        client = Client()
        client.force_login(role_users[role])
        return client

    return client_for


class NothingWritten:
    """Count the rows a refused input must not leave behind, before and after."""

    MODELS = (ErasureRequest, Dataset, DatasetVersion, ModelVersion, AuditEvent)

    def __enter__(self):
        self.before = {model: model.objects.count() for model in self.MODELS}
        return self

    def __exit__(self, *exc_info):
        if exc_info[0] is None:
            after = {model: model.objects.count() for model in self.MODELS}
            changed = {
                model.__name__: after[model] - self.before[model]
                for model in self.MODELS
                if after[model] != self.before[model]
            }
            assert not changed, f"a refused input wrote rows: {changed}"


def _subject(**lists) -> dict:
    return {"subject": lists, "legal_ground": "art17_1_b"}


# --- huge fields -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        (_subject(names=["x" * 1_000_000]), "subject"),
        (_subject(emails=[f"{'a' * 300}@example.org"]), "subject"),
        (_subject(names=[f"Name {n}" for n in range(500)]), "subject"),
        (
            {**_subject(names=["Ada Quill"]), "scope": {"all": False, "dataset_ids": list(range(1, 5000))}},
            "scope",
        ),
    ],
)
def test_a_huge_field_through_the_api_is_a_400_naming_it(api, body, field):
    with NothingWritten():
        response = api("officer").post("/api/v1/requests/", body, format="json")
    assert response.status_code == 400 and field in response.json() and response.json()["code"] == "invalid"


def test_a_huge_field_through_the_page_is_a_form_error(page):
    with NothingWritten():
        response = page("officer").post(
            "/requests/new/",
            {
                "received_at": "2026-11-20T09:30",
                "channel": "email",
                "legal_ground": "art17_1_b",
                "names": "x" * 100_000,
            },
        )
    assert response.status_code == 400 and "at most" in response.content.decode()


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    with NothingWritten():
        response = api("officer").generic(
            "POST",
            "/api/v1/requests/",
            json.dumps(_subject(names=["y" * 20_000])),
            content_type="application/json",
        )
    assert response.status_code in (400, 413)


# --- control characters and NUL bytes ----------------------------------------------------------


@pytest.mark.parametrize(
    "role, path, body",
    [
        ("officer", "/api/v1/requests/", _subject(names=["Ada\x00Quill"])),
        (
            "officer",
            "/api/v1/requests/",
            {**_subject(names=["Ada Quill"]), "assigned_officer": "off\x00icer"},
        ),
        ("officer", "/api/v1/requests/search/", {"q": "ada\x00quill@example.org"}),
        (
            "engineer",
            "/api/v1/datasets/",
            {"name": "tickets\x00", "path": "{data_dir}/incoming/tickets.jsonl"},
        ),
        (
            "engineer",
            "/api/v1/datasets/",
            {"name": "tickets", "path": "{data_dir}/incoming/\x00tickets.jsonl"},
        ),
        ("engineer", "/api/v1/models/", {"name": "model\x00", "path": "{data_dir}/imported/model"}),
        ("engineer", "/api/v1/models/", {"name": "model", "path": "{data_dir}/imported/\x00model"}),
    ],
)
def test_a_nul_byte_through_the_api_is_a_400(api, data_dir, role, path, body):
    write_jsonl(data_dir / "incoming" / "tickets.jsonl", [{"id": "1", "text": "hello"}])
    tiny_checkpoint(data_dir / "imported" / "model")
    body = {
        key: value.replace("{data_dir}", str(data_dir)) if isinstance(value, str) else value
        for key, value in body.items()
    }
    with NothingWritten():
        response = api(role).post(path, body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "null" in json.dumps(response.json()).lower()


def test_a_nul_byte_in_a_query_filter_is_a_400(api):
    response = api("officer").get("/api/v1/requests/", {"q": "ER-\x00"})
    assert response.status_code == 400 and "q" in response.json()


@pytest.mark.parametrize("name", ["Ada \x1b[31mQuill", "Ada\u202eLliuq", "Ada\x07Quill", "Ada\r\nQuill"])
def test_a_control_character_in_an_identifier_is_a_400_naming_its_position(api, page, name):
    with NothingWritten():
        through_api = api("officer").post(
            "/api/v1/requests/", _subject(names=["Bo Lund", name]), format="json"
        )
        through_page = page("officer").post(
            "/requests/new/",
            {
                "received_at": "2026-11-20T09:30",
                "channel": "email",
                "legal_ground": "art17_1_b",
                # A line break splits the page's list into lines; U+001F is a control that does not.
                "addresses": name.replace("\r\n", "\x1f"),
            },
        )
    assert through_api.status_code == 400
    assert through_api.json()["subject"]["names"] == ["Name 2 holds a control character; remove it."]
    assert (
        through_page.status_code == 400
        and "Address 1 holds a control character" in through_page.content.decode()
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "model\x00"},
        {"path": "{data_dir}/imported/\x00model"},
        {"notes": "a\x00b"},
        {"name": "x" * 10_000},
        {"dataset_version": "²"},
        {"parent": "99999999999999999999999"},
    ],
)
def test_hostile_fields_on_the_model_register_page_are_form_errors(page, data_dir, fields):
    """The checkpoint is real and under the data folder: only the hostile field can refuse it."""
    tiny_checkpoint(data_dir / "imported" / "model")
    good = {"name": "model", "path": str(data_dir / "imported" / "model"), "notes": ""}
    hostile = {key: value.replace("{data_dir}", str(data_dir)) for key, value in fields.items()}
    with NothingWritten():
        response = page("engineer").post("/jobs/models/register/", {**good, **hostile})
    assert response.status_code == 400
    assert page("engineer").post("/jobs/models/register/", good).status_code == 302, (
        "the good fields register"
    )


def test_a_nul_byte_in_a_data_set_upload_is_a_form_error(page, data_dir):
    upload = SimpleUploadedFile(
        "tickets.jsonl", b'{"id": "1", "text": "hello"}\n', content_type="application/json"
    )
    with NothingWritten():
        response = page("engineer").post(
            "/datasets/upload/", {"name": "tick\x00ets", "text_field": "text", "file": upload}
        )
    assert response.status_code == 400


@pytest.mark.parametrize("model_version", ["abc", "", "²", "99999999999999999999999", "\x00"])
def test_a_model_version_that_is_not_one_on_the_deployment_form_is_a_form_error(page, model_version):
    with NothingWritten():
        response = page("engineer").post(
            "/jobs/deployments/", {"name": "bot", "model_version": model_version}
        )
    assert response.status_code == 400 and "Choose a registered model version." in response.content.decode()


def test_a_nul_byte_in_a_deployment_name_is_a_form_error(page, engineer, data_dir):
    from unlearning_jobs.registry.services import model_version_register

    version = model_version_register(
        name="m", path=tiny_checkpoint(data_dir / "imported" / "m"), actor=engineer
    )
    with NothingWritten():
        response = page("engineer").post(
            "/jobs/deployments/", {"name": "bot\x00", "model_version": str(version.pk)}
        )
    assert response.status_code == 400 and "control character" in response.content.decode()


# --- HTML and JavaScript in names --------------------------------------------------------------


def test_html_in_a_subject_name_comes_out_escaped_on_the_pages(api, page):
    created = api("officer").post(
        "/api/v1/requests/", _subject(names=[SCRIPT_NAME], emails=["ada@example.org"]), format="json"
    )
    assert created.status_code == 201
    pk = created.json()["id"]
    officer = page("officer")
    revealed = officer.post(
        f"/requests/{pk}/actions/reveal-identifiers/", {"reveal-identifiers-reason": "check"}
    )
    for response in (
        officer.get(f"/requests/{pk}/"),
        revealed,
        officer.get("/requests/all/"),
        page("auditor").get(f"/audit/requests/{pk}/"),
    ):
        assert response.status_code == 200
        html = response.content.decode()
        assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#x27;lethe&#x27;)&lt;/script&gt;" in revealed.content.decode()


def test_html_in_data_set_and_model_names_comes_out_escaped(api, page, data_dir):
    write_jsonl(data_dir / "incoming" / "tickets.jsonl", [{"id": "1", "text": "hello"}])
    registered = api("engineer").post(
        "/api/v1/datasets/",
        {"name": IMG_NAME, "path": str(data_dir / "incoming" / "tickets.jsonl")},
        format="json",
    )
    assert registered.status_code == 202, registered.json()
    registration = UnlearningJob.objects.get(pk=registered.json()["id"])
    assert run_inline(registration) == "succeeded"
    registration.refresh_from_db()
    tiny_checkpoint(data_dir / "imported" / "html-model")
    model = api("engineer").post(
        "/api/v1/models/",
        {"name": SCRIPT_NAME, "path": str(data_dir / "imported" / "html-model"), "notes": IMG_NAME},
        format="json",
    )
    assert model.status_code == 201, model.json()
    engineer = page("engineer")
    dataset_pk = registration.produced_dataset_version.dataset_id
    for path in (
        "/datasets/",
        f"/datasets/{dataset_pk}/",
        "/jobs/models/",
        f"/jobs/models/{model.json()['id']}/",
    ):
        html = engineer.get(path).content.decode()
        assert '<img src=x onerror="alert(1)">' not in html and "<script>alert(" not in html, path
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html or "&lt;script&gt;" in html, path


# --- SQL-looking strings -----------------------------------------------------------------------


def test_sql_looking_strings_are_stored_and_found_as_text(api):
    created = api("officer").post(
        "/api/v1/requests/", _subject(names=[SQL_NAME], addresses=["1' OR '1'='1"]), format="json"
    )
    assert created.status_code == 201
    found = api("officer").post("/api/v1/requests/search/", {"q": SQL_NAME}, format="json")
    assert found.status_code == 200 and [item["id"] for item in found.json()] == [created.json()["id"]]
    listed = api("officer").get("/api/v1/requests/", {"q": "' OR 1=1 --"})
    assert listed.status_code == 200 and listed.json()["count"] == 0
    assert ErasureRequest.objects.filter(pk=created.json()["id"]).exists()


# --- paths out of the allowed folders ----------------------------------------------------------


@pytest.fixture
def outside(tmp_path):
    """A data file and a checkpoint outside LETHE_DATA_DIR, as an attacker would point at."""
    folder = tmp_path / "outside"
    write_jsonl(folder / "secrets.jsonl", [{"id": "1", "text": "not yours"}])
    tiny_checkpoint(folder / "model")
    return folder


def _traversals(data_dir, outside, *, target: str) -> list[str]:
    (data_dir / "incoming").mkdir(parents=True, exist_ok=True)
    link = data_dir / "incoming" / f"link-to-{target.replace('/', '-')}"
    link.symlink_to(outside / target)
    return [
        "../../etc/passwd",
        "/etc/passwd",
        str(outside / target),
        f"incoming/../../outside/{target}",
        "incoming/" + link.name,
        str(link),
    ]


def test_a_data_set_path_out_of_the_allowed_folders_is_refused_through_the_api(api, data_dir, outside):
    for path in _traversals(data_dir, outside, target="secrets.jsonl"):
        with NothingWritten():
            response = api("engineer").post(
                "/api/v1/datasets/", {"name": "escape", "path": path}, format="json"
            )
        assert response.status_code == 400, path
        assert "path" in response.json(), path


def test_a_model_path_out_of_the_allowed_folders_is_refused_through_the_api_and_the_page(
    api, page, data_dir, outside
):
    for path in _traversals(data_dir, outside, target="model"):
        with NothingWritten():
            through_api = api("engineer").post(
                "/api/v1/models/", {"name": "escape", "path": path}, format="json"
            )
            through_page = page("engineer").post("/jobs/models/register/", {"name": "escape", "path": path})
        assert through_api.status_code == 400 and "path" in through_api.json(), path
        assert through_page.status_code == 400, path


def test_an_upload_named_to_climb_out_is_saved_under_the_uploads_folder(page, data_dir):
    upload = SimpleUploadedFile(
        "../../../../tmp/evil.jsonl", b'{"id": "1", "text": "hello"}\n', content_type="application/json"
    )
    response = page("engineer").post(
        "/datasets/upload/", {"name": "uploaded", "text_field": "text", "file": upload}
    )
    assert response.status_code == 302
    version = DatasetVersion.objects.get(dataset__name="uploaded")
    assert version.source_path.startswith(str((data_dir / "uploads").resolve()) + "/"), version.source_path
    assert version.source_name == "evil.jsonl"
