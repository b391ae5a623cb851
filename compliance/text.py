"""Checks on free text that services apply before a value is stored, shown or hashed.

PostgreSQL refuses NUL in text (a 500 if it reaches the database), terminal escapes and other
control characters have no place in a name, and the Unicode bidirectional overrides make a
value display as something else ("Trojan Source"). Names and identifiers hold none of them;
notes may hold tabs and line breaks.
"""

from __future__ import annotations

import unicodedata

#: Line breaks and tabs: allowed in multi-line text such as notes and descriptions.
LINE_CONTROLS = "\t\n\r"
#: Embeddings, overrides and isolates of the bidirectional algorithm (U+202A–E, U+2066–9).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character_found(value: str, *, allow: str = "") -> bool:
    """Return whether ``value`` holds a control character (other than those in ``allow``) or a bidi override."""
    return any(
        (unicodedata.category(char) == "Cc" and char not in allow) or char in BIDI_CONTROLS for char in value
    )
