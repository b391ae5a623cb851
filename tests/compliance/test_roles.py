"""Each role sees its own home page; another role's page answers 403, not a crash."""

import re

import pytest
from django.urls import reverse

HOMES = {
    "officer": "requests_app:home",
    "auditor": "compliance:home",
    "engineer": "unlearning_jobs:home",
}


@pytest.mark.parametrize("username", list(HOMES))
def test_landing_page_redirects_each_role_to_its_home(client, role_users, username):
    client.force_login(role_users[username])
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse(HOMES[username])


@pytest.mark.parametrize("username", list(HOMES))
@pytest.mark.parametrize("page_owner", list(HOMES))
def test_role_matrix_of_home_pages(client, role_users, username, page_owner):
    client.force_login(role_users[username])
    response = client.get(reverse(HOMES[page_owner]))
    expected = 200 if username == page_owner else 403
    assert response.status_code == expected


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get(reverse("requests_app:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def _nav_links(html: str) -> set[str]:
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return set(re.findall(r'href="([^"]+)"', nav))


def test_navigation_shows_each_role_only_its_own_pages(client, role_users):
    client.force_login(role_users["auditor"])
    links = _nav_links(client.get(reverse("compliance:home")).content.decode())
    assert reverse("compliance:home") in links
    assert reverse("requests_app:list") in links  # read-only list of every request
    assert reverse("requests_app:home") not in links  # the officer's working list
    assert reverse("requests_app:create") not in links
    assert reverse("unlearning_jobs:home") not in links

    client.force_login(role_users["engineer"])
    links = _nav_links(client.get(reverse("unlearning_jobs:home")).content.decode())
    assert reverse("unlearning_jobs:home") in links
    assert not any(link.startswith("/requests/") or link.startswith("/audit/") for link in links)


def test_user_without_role_is_told_so(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw-123456789")
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert b"No role yet" in response.content
