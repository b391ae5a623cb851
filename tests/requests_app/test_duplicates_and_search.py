"""Duplicate detection and search by identifier, both through keyed hashes only."""

import pytest

from compliance.models import AuditEvent
from requests_app import identifiers, selectors
from requests_app.identifiers import SubjectIdentifiers
from requests_app.models import RequestStatus
from requests_app.selectors import ErasureRequestFilters, erasure_request_list


def test_a_request_sharing_an_email_with_an_open_one_is_flagged_and_linked(make_request):
    first = make_request()
    second = make_request(
        subject=SubjectIdentifiers(names=("J. Smith",), emails=("JOHN.SMITH@example.com ",))
    )
    assert second.duplicate_of == first
    created = AuditEvent.objects.filter(action="erasure_request.created", object_id=str(second.pk)).get()
    assert created.details["duplicate_of"] == first.reference
    assert list(first.duplicates.all()) == [second]


@pytest.mark.parametrize(
    "shared",
    [
        SubjectIdentifiers(phones=("+44 20 7946 0456",)),
        SubjectIdentifiers(account_ids=("acc 123456",)),
        SubjectIdentifiers(addresses=("12 Baker Street London NW1 6XE",)),
    ],
)
def test_any_shared_direct_identifier_makes_a_duplicate(make_request, shared):
    first = make_request()
    assert make_request(subject=shared).duplicate_of == first


def test_a_shared_name_alone_is_not_a_duplicate(make_request):
    make_request()
    other_john = make_request(subject=SubjectIdentifiers(names=("John Smith",), emails=("js@elsewhere.org",)))
    assert other_john.duplicate_of is None


def test_closed_requests_do_not_make_duplicates_but_are_shown_as_related(request_in, make_request):
    withdrawn = request_in(RequestStatus.WITHDRAWN)
    again = make_request(subject=SubjectIdentifiers(emails=("john.smith@example.com",)))
    assert again.duplicate_of is None
    assert list(selectors.erasure_request_overlapping(erasure_request=again)) == [withdrawn]


def test_the_oldest_overlapping_open_request_is_linked(make_request):
    first = make_request()
    make_request(subject=SubjectIdentifiers(emails=("john.smith@example.com",)))
    third = make_request(subject=SubjectIdentifiers(account_ids=("ACC123456",)))
    assert third.duplicate_of == first


@pytest.mark.parametrize(
    "term",
    [
        "john.smith@EXAMPLE.com",
        "+44 20 7946 0456",
        "02079460456",
        "ACC 123456",
        "Smith, John",
        "Jon Smith",  # a nickname variant of the name
    ],
)
def test_search_by_identifier_finds_the_request_without_decrypting_any_row(
    make_request, officer, monkeypatch, term
):
    wanted = make_request()
    make_request(subject=SubjectIdentifiers(names=("Ada Lovelace",), emails=("ada@example.org",)))

    def no_decryption(token):
        raise AssertionError("search must not decrypt identifiers")

    monkeypatch.setattr(identifiers, "identifiers_decrypt", no_decryption)
    monkeypatch.setattr(selectors, "identifiers_decrypt", no_decryption)
    found = erasure_request_list(filters=ErasureRequestFilters(search=term), user=officer)
    assert list(found) == [wanted]


def test_search_by_reference(make_request, officer):
    first = make_request()
    make_request(subject=SubjectIdentifiers(names=("Ada Lovelace",)))
    assert list(
        erasure_request_list(filters=ErasureRequestFilters(search=first.reference.lower()), user=officer)
    ) == [first]
    assert (
        list(
            erasure_request_list(filters=ErasureRequestFilters(search="nobody@nowhere.example"), user=officer)
        )
        == []
    )
