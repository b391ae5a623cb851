"""Templates: Django's ``{# #}`` comment ends at the line's end; a longer one would be printed."""

import re

from tests.conftest import REPO_ROOT


def test_no_template_has_a_comment_that_spans_lines():
    spanning = re.compile(r"\{#(?:(?!#\}).)*\n", re.DOTALL)
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in sorted((REPO_ROOT / "templates").rglob("*.html"))
        if spanning.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use {% comment %} for comments of more than one line"
