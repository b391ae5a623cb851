"""Which identifiers in a person's own records are theirs, though their request did not give them.

A request gives what the person remembered; their records hold what they wrote at the time: the
phone number beside their e-mail address, their name in a ticket found through that address.
Locating uses such a value to link a record that holds the person's name and the value
(``requests_app.matching.services``); output suppression adds it to the person's guard rules, so
that a request giving only an e-mail still suppresses the name and phone its records show
(``unlearning_jobs.suppression.services``). Both decide with this one rule, on keyed hashes:

* at least ``LINKED_MIN_OWN_RECORDS`` of the person's records hold the value: one record may
  quote an agent, a neighbour or a referrer; a value the person keeps writing is theirs;
* at least ``LINKED_MIN_SHARE`` of every record that holds it, in the data searched, is one of
  the person's: a shop's switchboard, a support address or an agent's name is in many people's
  records and links nothing, and neither does a namesake's own number that the person's
  records happen to quote.

Pure: values are opaque keys (an entity type and a keyed hash), records opaque ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping

from .match_keys import RECOGNISER as MATCH_KEY_RECOGNISER

__all__ = [
    "LINKED_MIN_OWN_RECORDS",
    "LINKED_MIN_SHARE",
    "SPELLINGS_PER_VALUE",
    "candidates",
    "linked_spellings",
    "linked_values",
    "value_findings",
    "value_key",
]

LINKED_MIN_OWN_RECORDS = 2
LINKED_MIN_SHARE = 0.5
#: At most this many spellings of one linked value are read ("020 7946 0011", "+44 20 7946 0011").
SPELLINGS_PER_VALUE = 3
_PERSON = "PERSON"
_ADDRESS = "ADDRESS"


def linked_values(
    own: Mapping[Hashable, Collection[Hashable]],
    holders: Mapping[Hashable, Collection[Hashable]],
    *,
    min_own_records: int = LINKED_MIN_OWN_RECORDS,
    min_share: float = LINKED_MIN_SHARE,
) -> set[Hashable]:
    """Return the values of ``own`` that belong to the person.

    ``own`` maps each value to the person's records that hold it; ``holders`` maps it to every
    record that holds it in the data searched (the person's included). A value absent from
    ``holders`` is held by the person's records alone. Values held by fewer than
    ``min_own_records`` of the person's records never need a ``holders`` entry, so a caller can
    look up only ``candidates(own)``.
    """
    linked = set()
    for value in candidates(own, min_own_records=min_own_records):
        mine = set(own[value])
        everyone = set(holders.get(value, ())) | mine
        if len(mine) >= min_share * len(everyone):
            linked.add(value)
    return linked


def candidates(
    own: Mapping[Hashable, Collection[Hashable]], *, min_own_records: int = LINKED_MIN_OWN_RECORDS
) -> set[Hashable]:
    """Return the values held by enough of the person's records to be worth looking up."""
    return {value for value, records in own.items() if len(set(records)) >= min_own_records}


def value_key(
    entity_type: str, value_hash: str, sorted_hash: str | None, recogniser: str = ""
) -> tuple[str, str] | None:
    """Return the key a finding links by, or None for a finding that is no value of its own.

    Names go by their token-sorted hash, so "Quill, Ada" and "Ada Quill" are one value. Match
    keys (``match_keys.RECOGNISER``) are lookup keys, not values: every window of words that
    might be a name ("Contact Ada"), a street without its number ("Victoria Avenue", which the
    neighbour at number 40 shares), made to meet a request's value, not to say what a record
    holds.
    """
    if recogniser == MATCH_KEY_RECOGNISER:
        return None
    if entity_type == _PERSON:
        return (entity_type, sorted_hash) if sorted_hash else None
    return (entity_type, value_hash)


def value_findings(
    findings: Iterable[tuple[Hashable, str, int, int, str, str | None, str]],
) -> list[tuple[Hashable, str, int, int, tuple[str, str]]]:
    """Return the findings that are values, keyed, as ``linked_spellings`` takes them.

    ``findings`` are ``(record, entity type, start, end, value hash, sorted hash, recogniser)``,
    match keys included: they are no values (``value_key``), but a name inside an address any
    recogniser found, match keys included, is a street's ("Avenue Victor Hugo"), not a person.
    """
    findings = list(findings)
    address_spans: dict[Hashable, list[tuple[int, int]]] = defaultdict(list)
    for record, kind, start, end, *_ in findings:
        if kind == _ADDRESS:
            address_spans[record].append((start, end))
    values = []
    for record, kind, start, end, value_hash, sorted_hash, recogniser in findings:
        key = value_key(kind, value_hash, sorted_hash, recogniser)
        if key is None:
            continue
        if kind == _PERSON and any(s < end and start < e for s, e in address_spans.get(record, ())):
            continue
        values.append((record, kind, start, end, key))
    return values


def linked_spellings(
    found: Iterable[tuple[Hashable, str, int, int, tuple[str, str]]],
    holders_of: Callable[[set], Mapping[Hashable, Collection[Hashable]]],
    texts: Mapping[Hashable, str],
    *,
    per_value: int = SPELLINGS_PER_VALUE,
) -> dict[str, list[str]]:
    """Return, by entity type, how the person's linked values are written in their records.

    ``found`` holds the person's records' findings as ``(record, entity type, start, end, key)``
    (``key`` from ``value_key``); ``holders_of(keys)`` returns every record holding each key in
    the data searched, asked only for the candidates; ``texts`` the records' texts. The values
    are read at the findings' spans, in memory only, up to ``per_value`` spellings of each. A
    name is never read across a line break: such a span is the NER running on into the next line
    of a signature or an address ("Femke Visser\nTulpenhuis B.V. Customer Care\nfemke.visser@…"),
    and what it links is the block, not a name of the person's.
    """
    own: dict[tuple[str, str], set] = defaultdict(set)
    spans: dict[tuple[str, str], list[tuple[Hashable, int, int]]] = defaultdict(list)
    for record, _, start, end, key in found:
        own[key].add(record)
        spans[key].append((record, start, end))
    values: dict[str, list[str]] = defaultdict(list)
    for key in sorted(linked_values(own, holders_of(candidates(own)))):
        spellings = dict.fromkeys(texts[record][start:end].strip() for record, start, end in spans[key])
        spellings.pop("", None)
        if key[0] == _PERSON:
            spellings = {spelling: None for spelling in spellings if "\n" not in spelling}
        for spelling in list(spellings)[:per_value]:
            if spelling not in values[key[0]]:
                values[key[0]].append(spelling)
    return dict(values)
