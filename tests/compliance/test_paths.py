"""Paths are confined as written before anything on disk is looked at, and again once resolved."""

from __future__ import annotations

import pytest

from compliance.paths import NOT_ALLOWED, PathMissing, PathNotAllowed, confined_path


@pytest.fixture
def roots(settings, tmp_path):
    settings.LETHE_DATA_DIR = tmp_path / "data"
    settings.LETHE_IMPORT_ROOTS = [tmp_path / "imports"]
    for folder in ("data", "imports", "outside"):
        (tmp_path / folder).mkdir()
    (tmp_path / "outside" / "secret.jsonl").write_text("{}\n")
    (tmp_path / "data" / "mine.jsonl").write_text("{}\n")
    return tmp_path


def test_a_path_inside_a_root_is_returned_resolved(roots):
    assert (
        confined_path(roots / "data" / "sub" / ".." / "mine.jsonl")
        == (roots / "data" / "mine.jsonl").resolve()
    )


def test_a_refusal_reads_the_same_whether_the_file_outside_exists_or_not(roots):
    refusals = []
    for path in (
        roots / "outside" / "secret.jsonl",
        roots / "outside" / "no-such-file.jsonl",
        "/etc/passwd",
        "/etc/no-such-file",
        roots / "data" / ".." / "outside" / "secret.jsonl",
        "~/.ssh/id_rsa",
    ):
        with pytest.raises(PathNotAllowed) as refused:
            confined_path(path)
        refusals.append(str(refused.value))
    assert set(refusals) == {NOT_ALLOWED}
    assert str(roots) not in NOT_ALLOWED


def test_a_link_inside_a_root_that_leads_out_is_refused(roots):
    (roots / "data" / "innocent.jsonl").symlink_to(roots / "outside" / "secret.jsonl")
    with pytest.raises(PathNotAllowed):
        confined_path(roots / "data" / "innocent.jsonl")


def test_a_missing_file_inside_a_root_is_said_to_be_missing(roots):
    with pytest.raises(PathMissing):
        confined_path(roots / "imports" / "later.jsonl")
