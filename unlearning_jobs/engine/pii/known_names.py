"""Which words people bear as given or family names (Faker's name lists, folded).

Shared by locating (a stop word that is a name, such as the Vietnamese given name "An", is read
as one where a name follows it) and the guard (a misspelling is not repaired into a suppressed
name when it is itself someone's name).
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from .normalise import NormalisationError, normalise_name

#: Faker locales whose name lists say which words are people's names (Faker is a runtime
#: requirement already; its lists are data, not generated values).
_NAME_LOCALES = (
    "en_US en_GB en_IE en_IN en_NZ de_DE de_AT de_CH fr_FR fr_CH es_ES es_MX it_IT nl_NL nl_BE "
    "pt_PT pt_BR pl_PL sv_SE da_DK no_NO fi_FI cs_CZ hu_HU ro_RO tr_TR ga_IE"
).split()


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    """Return given and family names in use, folded as name tokens are (lower case, no accents)."""
    names: set[str] = set()
    for locale in _NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ModuleNotFoundError:
            # A Faker release without this locale: the list is shorter, never wrong.
            continue
        for attribute in ("first_names", "first_names_male", "first_names_female", "last_names"):
            for name in getattr(provider, attribute, ()):
                try:
                    folded = normalise_name(name)
                except NormalisationError:
                    continue
                names.update(folded.split())
    return frozenset(names)


def is_known_name(folded_word: str) -> bool:
    """Return whether a folded word is a given or family name people bear."""
    return folded_word in _known_names()
