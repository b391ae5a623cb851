"""The rule that tells a person's own further identifiers from values their records merely quote."""

from __future__ import annotations

from unlearning_jobs.engine.pii.linking import LINKED_MIN_OWN_RECORDS, candidates, linked_values

PHONE, SWITCHBOARD, AGENT, NEIGHBOUR = ("PHONE", "p1"), ("PHONE", "p2"), ("PERSON", "n1"), ("ADDRESS", "a1")


def test_a_value_the_persons_records_keep_writing_and_few_others_hold_is_theirs():
    own = {PHONE: {1, 2, 3}, SWITCHBOARD: {1, 2, 3}, AGENT: {2, 3}, NEIGHBOUR: {3}}
    holders = {
        PHONE: {1, 2, 3, 90},  # one other record quotes it: still mostly the person's
        SWITCHBOARD: {1, 2, 3, *range(100, 110)},  # the shop's number, in everyone's records
        AGENT: {2, 3, 50, 51, 52},  # an agent who signs many people's tickets
    }

    assert linked_values(own, holders) == {PHONE}


def test_one_record_links_nothing_and_only_candidates_need_a_lookup():
    own = {NEIGHBOUR: {3}, PHONE: {1, 2}}

    assert LINKED_MIN_OWN_RECORDS == 2
    assert candidates(own) == {PHONE}
    # Held by the person's records alone (no other holder known): theirs.
    assert linked_values(own, {}) == {PHONE}
    assert linked_values(own, {PHONE: {1, 2, 7, 8, 9}}) == set()


def test_half_of_the_holders_is_enough_and_the_thresholds_are_parameters():
    own = {PHONE: {1, 2}}

    assert linked_values(own, {PHONE: {1, 2, 7, 8}}) == {PHONE}
    assert linked_values(own, {PHONE: {1, 2, 7, 8}}, min_share=0.75) == set()
    assert linked_values(own, {}, min_own_records=3) == set()
