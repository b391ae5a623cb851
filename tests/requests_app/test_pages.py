"""The officer's and auditor's pages: role matrix, the new-request form, steps, reveal, filters."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.models import AuditEvent
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import ErasureRequest, RequestStatus

FORM = {
    "received_at": "",
    "channel": "email",
    "legal_ground": "art17_1_b",
    "names": "Maria Garcia\nMaría García-López",
    "emails": "maria.garcia@example.net",
    "phones": "+34 612 345 678",
    "addresses": "",
    "account_ids": "CUST-99812",
    "assigned_officer": "",
    "scope_all": "on",
    "scope_dataset_ids": "",
    "scope_model_version_ids": "",
}


def _form(**changes):
    data = dict(FORM, received_at=timezone.localtime().strftime("%Y-%m-%dT%H:%M"))
    data.update(changes)
    return data


@pytest.mark.parametrize("username,expected", [("officer", 200), ("auditor", 200), ("engineer", 403)])
def test_read_pages_role_matrix(client, role_users, make_request, username, expected):
    erasure_request = make_request()
    client.force_login(role_users[username])
    assert client.get(reverse("requests_app:list")).status_code == expected
    assert client.get(reverse("requests_app:detail", args=[erasure_request.pk])).status_code == expected


@pytest.mark.parametrize("username,expected", [("officer", 200), ("auditor", 403), ("engineer", 403)])
def test_write_pages_role_matrix(client, role_users, username, expected):
    client.force_login(role_users[username])
    assert client.get(reverse("requests_app:create")).status_code == expected
    assert client.get(reverse("requests_app:home")).status_code == expected


@pytest.mark.parametrize("username", ["auditor", "engineer"])
@pytest.mark.parametrize(
    "action,data",
    [
        ("verify-identity", {"verify-identity-method": "email_link"}),
        ("withdraw", {}),
        ("reveal-identifiers", {}),
    ],
)
def test_only_officers_can_post_steps(client, role_users, make_request, username, action, data):
    erasure_request = make_request()
    client.force_login(role_users[username])
    response = client.post(reverse("requests_app:action", args=[erasure_request.pk, action]), data)
    assert response.status_code == 403
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED
    assert not AuditEvent.objects.filter(action="erasure_request.identifiers_revealed").exists()


def test_new_request_form_for_anonymous_visitor_redirects_to_login(client, db):
    response = client.get(reverse("requests_app:create"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = client.post(reverse("requests_app:create"), _form())
    assert response.status_code == 302 and not ErasureRequest.objects.exists()


def test_auditor_sees_the_request_read_only_and_masked(client, auditor, make_request):
    erasure_request = make_request()
    client.force_login(auditor)
    html = client.get(reverse("requests_app:detail", args=[erasure_request.pk])).content.decode()
    assert "J***@Example.com" in html and "John.Smith@Example.com" not in html
    assert "Read only." in html and '<form method="post" action="/requests/' not in html
    assert "erasure_request.created" in html  # the timeline


def test_officer_records_a_request_with_the_form(client, officer):
    client.force_login(officer)
    response = client.post(reverse("requests_app:create"), _form())
    erasure_request = ErasureRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == erasure_request.get_absolute_url()
    assert erasure_request.assigned_officer == officer
    assert erasure_request.identifier_hashes.filter(is_variant=False).count() == 5
    detail = client.get(response["Location"]).content.decode()
    assert "m***@example.net" in detail and "+34 **** ***678" in detail
    assert "maria.garcia@example.net" not in detail


@pytest.mark.parametrize(
    "changes,field,fragment",
    [
        ({"emails": "maria.garcia@"}, "emails", "E-mail 1: e-mail address is malformed"),
        ({"phones": "555"}, "phones", "Phone number 1"),
        ({"names": "", "emails": "", "phones": "", "account_ids": ""}, None, "at least one identifier"),
        (
            {"received_at": (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")},
            "received_at",
            "cannot be in the future",
        ),
        ({"legal_ground": "art17_1_z"}, "legal_ground", "Select a valid choice"),
        ({"names": "N" * 201}, "names", "201 characters long"),
        ({"emails": "x@example.com\n" * 400}, "emails", "at most"),
        ({"scope_all": "", "scope_dataset_ids": ""}, "scope_all", "at least one data set"),
        ({"scope_all": "", "scope_dataset_ids": "one, two"}, "scope_dataset_ids", "whole numbers"),
    ],
)
def test_bad_input_in_the_form_is_shown_on_the_field_and_nothing_is_saved(
    client, officer, changes, field, fragment
):
    client.force_login(officer)
    response = client.post(reverse("requests_app:create"), _form(**changes))
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.errors.get(field or "__all__", [])
    assert any(fragment in error for error in errors), form.errors
    assert fragment.split(":")[0] in response.content.decode()
    assert not ErasureRequest.objects.exists()


def test_every_bad_field_of_the_form_is_reported_at_once(client, officer):
    client.force_login(officer)
    response = client.post(
        reverse("requests_app:create"), _form(emails="maria@", phones="12", legal_ground="nope")
    )
    assert response.status_code == 400
    assert {"emails", "phones", "legal_ground"} <= set(response.context["form"].errors)


def test_officer_verifies_identity_and_the_timeline_shows_it(client, officer, make_request):
    erasure_request = make_request()
    client.force_login(officer)
    url = reverse("requests_app:action", args=[erasure_request.pk, "verify-identity"])
    response = client.post(url, {"verify-identity-method": "document_seen", "verify-identity-note": ""})
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "Identity verified" in html and "Identity document seen" in html
    assert "erasure_request.identity_verified" in html
    assert "Start locating records" in html and "Record identity verification" not in html


def test_an_illegal_step_shows_the_error_and_changes_nothing(client, officer, make_request):
    erasure_request = make_request()
    client.force_login(officer)
    events = AuditEvent.objects.count()
    response = client.post(reverse("requests_app:action", args=[erasure_request.pk, "approve"]), {})
    assert response.status_code == 409
    html = response.content.decode()
    assert "Nothing was changed." in html and "possible only when it is review" in html
    assert ErasureRequest.objects.get(pk=erasure_request.pk).status == RequestStatus.RECEIVED
    assert AuditEvent.objects.count() == events


def test_a_bad_extension_shows_the_field_error(client, officer, make_request):
    erasure_request = make_request(received_at=timezone.now() - timedelta(days=5))
    client.force_login(officer)
    too_far = timezone.localtime(erasure_request.received_at + timedelta(days=120))
    response = client.post(
        reverse("requests_app:action", args=[erasure_request.pk, "extend"]),
        {"extend-until": too_far.strftime("%Y-%m-%dT%H:%M"), "extend-reason": "Complex"},
    )
    assert response.status_code == 400
    assert "at most two further months" in response.content.decode()
    assert ErasureRequest.objects.get(pk=erasure_request.pk).extended_until is None


def test_officer_reveals_identifiers_and_the_reveal_is_audited(client, officer, make_request):
    erasure_request = make_request()
    client.force_login(officer)
    response = client.post(
        reverse("requests_app:action", args=[erasure_request.pk, "reveal-identifiers"]),
        {"reveal-identifiers-reason": "Reply to the person"},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "John.Smith@Example.com" in html and "Revealed to you" in html
    event = AuditEvent.objects.get(action="erasure_request.identifiers_revealed")
    assert event.actor == officer and event.details["reason"] == "Reply to the person"
    # The next plain view is masked again.
    assert "John.Smith@Example.com" not in client.get(erasure_request.get_absolute_url()).content.decode()


def test_unknown_action_is_not_found(client, officer, make_request):
    erasure_request = make_request()
    client.force_login(officer)
    assert (
        client.post(reverse("requests_app:action", args=[erasure_request.pk, "teleport"])).status_code == 404
    )


def test_list_filters_by_status_assignee_urgency_and_search(client, officer, request_in, make_request):
    overdue = make_request(received_at=timezone.now() - timedelta(days=40))
    verified = request_in(
        RequestStatus.IDENTITY_VERIFICATION,
        subject=SubjectIdentifiers(names=("Ada Lovelace",), emails=("ada@example.org",)),
    )
    withdrawn = request_in(RequestStatus.WITHDRAWN, subject=SubjectIdentifiers(names=("Alan Turing",)))
    client.force_login(officer)

    def refs(**params):
        response = client.get(reverse("requests_app:home"), params)
        return [r.reference for r in response.context["erasure_requests"]]

    assert refs() == [overdue.reference, verified.reference]  # open only, by deadline
    assert refs(status="") == [overdue.reference, verified.reference, withdrawn.reference]
    assert refs(status="withdrawn") == [withdrawn.reference]
    assert refs(status="identity_verification") == [verified.reference]
    assert refs(overdue="on") == [overdue.reference]
    assert refs(due_soon="on") == []
    assert refs(assignee="none") == []
    assert refs(assignee="me") == [overdue.reference, verified.reference]

    def search(term, query=""):
        response = client.post(reverse("requests_app:home") + query, {"q": term})
        assert response.status_code == 200
        return [r.reference for r in response.context["erasure_requests"]]

    assert search("ADA@example.org") == [verified.reference]
    assert search(overdue.reference) == [overdue.reference]
    assert search("Alan Turing") == []  # closed, and the home shows open requests
    assert search("Alan Turing", "?status=") == [withdrawn.reference]
    # A search term in the URL is ignored: identifiers must not reach access logs.
    assert refs(q="ADA@example.org") == [overdue.reference, verified.reference]


def test_home_page_shows_the_due_date_and_links_to_the_detail(client, officer, make_request):
    erasure_request = make_request()
    client.force_login(officer)
    html = client.get(reverse("requests_app:home")).content.decode()
    assert f'href="{erasure_request.get_absolute_url()}"' in html
    assert timezone.localtime(erasure_request.due_at).strftime("%Y-%m-%d") in html
    assert "John" not in html and "example.com" not in html


def test_duplicate_is_flagged_on_the_list_and_the_detail(client, officer, make_request):
    first = make_request()
    second = make_request(subject=SubjectIdentifiers(emails=("john.smith@example.com",)))
    client.force_login(officer)
    assert f"duplicate of {first.reference}" in client.get(reverse("requests_app:home")).content.decode()
    detail = client.get(second.get_absolute_url()).content.decode()
    assert "possible duplicate" in detail and first.get_absolute_url() in detail


def test_a_request_identified_by_name_only_asks_for_one_more_identifier(client, officer, make_request):
    name_only = make_request(subject=SubjectIdentifiers(names=("Maria Lopez",)))
    with_email = make_request(
        subject=SubjectIdentifiers(names=("Ana Ruiz",), emails=("ana.ruiz@example.org",))
    )
    email_only = make_request(subject=SubjectIdentifiers(emails=("solo@example.org",)))
    client.force_login(officer)
    assert 'id="name-only"' in client.get(name_only.get_absolute_url()).content.decode()
    assert 'id="name-only"' not in client.get(with_email.get_absolute_url()).content.decode()
    assert 'id="name-only"' not in client.get(email_only.get_absolute_url()).content.decode()
    review_page = client.get(reverse("review:detail", kwargs={"pk": name_only.pk})).content.decode()
    assert 'id="name-only"' in review_page and "Art. 12(6)" in review_page
