"""The rule that tells a person's own further identifiers from values their records merely quote."""

from __future__ import annotations

from unlearning_jobs.engine.pii.linking import (
    LINKED_MIN_OWN_RECORDS,
    candidates,
    linked_spellings,
    linked_values,
    value_findings,
    value_key,
)

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


def test_linked_spellings_read_each_linked_value_at_its_spans_and_skip_name_windows():
    texts = {
        1: "Ada Quill, tel 020 7946 0011. Agent: Tom Baker",
        2: "Call Ada Quill on +44 20 7946 0011 (Tom Baker)",
        3: "Quill, Ada rang",
    }
    phone, name, agent = ("PHONE", "ph"), ("PERSON", "ada"), ("PERSON", "tom")
    found = [
        (1, "PHONE", 15, 28, phone),
        (2, "PHONE", 18, 34, phone),
        (1, "PERSON", 0, 9, name),
        (2, "PERSON", 5, 14, name),
        (3, "PERSON", 0, 11, name),
        (1, "PERSON", 37, 46, agent),
        (2, "PERSON", 36, 45, agent),
    ]
    asked = []

    def holders_of(keys):
        asked.append(set(keys))
        return {agent: {1, 2, 10, 11, 12, 13}}

    values = linked_spellings(found, holders_of, texts, per_value=2)

    assert values == {"PERSON": ["Ada Quill", "Quill, Ada"], "PHONE": ["020 7946 0011", "+44 20 7946 0011"]}
    assert asked == [{phone, name, agent}]
    assert value_key("PERSON", "window", None) is None
    assert value_key("EMAIL", "h", None, "lethe-match-keys") is None
    assert value_key("PERSON", "in-order", "sorted") == ("PERSON", "sorted")
    assert value_key("EMAIL", "h", None) == ("EMAIL", "h")


def test_value_findings_drop_match_keys_and_names_inside_an_address():
    findings = [
        # "Avenue Victor Hugo": the NER's name inside the address a match key found.
        ("r1", "ADDRESS", 10, 40, "street-key", None, "lethe-match-keys"),
        ("r1", "PERSON", 20, 31, "victor-hugo", "hugo-victor", "SpacyRecognizer"),
        ("r1", "PERSON", 50, 62, "maryse", "marchal-maryse", "SpacyRecognizer"),
        ("r1", "PERSON", 50, 56, "window", None, "lethe-match-keys"),
        ("r1", "PHONE", 70, 84, "ph", None, "PhoneRecognizer"),
        ("r1", "PHONE", 70, 84, "ph-key", None, "lethe-match-keys"),
        ("r2", "PERSON", 20, 31, "victor-hugo", "hugo-victor", "SpacyRecognizer"),
    ]

    assert value_findings(findings) == [
        ("r1", "PERSON", 50, 62, ("PERSON", "marchal-maryse")),
        ("r1", "PHONE", 70, 84, ("PHONE", "ph")),
        # Another record's "Victor Hugo" with no address around it is a name.
        ("r2", "PERSON", 20, 31, ("PERSON", "hugo-victor")),
    ]


def test_a_name_is_never_read_across_a_line_break():
    # The NER ran an agent's signature on into the next lines; the block is in two of Aron's
    # tickets and nobody else's, so it links, but what it links is no name of his.
    texts = {
        1: "Parcel for Aron Meijer.\nFemke Visser\nTulpenhuis B.V. Customer Care",
        2: "Aron Meijer asked again.\nFemke Visser\nTulpenhuis B.V. Customer Care",
    }
    aron, block = ("PERSON", "aron"), ("PERSON", "block")
    found = [
        (1, "PERSON", 11, 22, aron),
        (2, "PERSON", 0, 11, aron),
        (1, "PERSON", 24, 67, block),
        (2, "PERSON", 25, 68, block),
    ]

    values = linked_spellings(found, lambda keys: {}, texts)

    assert texts[1][24:67].startswith("Femke Visser\n")
    assert values == {"PERSON": ["Aron Meijer"]}
