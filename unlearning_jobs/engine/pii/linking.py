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

from collections.abc import Collection, Hashable, Mapping

__all__ = ["LINKED_MIN_OWN_RECORDS", "LINKED_MIN_SHARE", "candidates", "linked_values"]

LINKED_MIN_OWN_RECORDS = 2
LINKED_MIN_SHARE = 0.5


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
