"""Issue 16, second pass: forms of a suppressed person's identifiers the guard meets, and the
namesakes and near names it spares. Every case is a mechanism, not a sample of the corpus."""

import pytest

from unlearning_jobs.engine.guard import Guard
from unlearning_jobs.engine.guard.rules import name_forms
from unlearning_jobs.engine.guard.variants import keystroke_repairs
from unlearning_jobs.engine.pii.match_keys import email_keys

from .builders import guard_for


@pytest.fixture(scope="module")
def guard() -> Guard:
    return guard_for(
        **{
            "ER-1": {
                "names": ["Harriet Harrington"],
                "emails": ["harriet.harrington@outlook.com"],
                "phones": ["020 7946 0958"],
                "addresses": ["73 Albert Crescent, Manchester M16 2YY"],
            },
            "ER-2": {"names": ["Caterina Di Stefano"], "emails": ["dmilne@gmail.com"]},
            "ER-3": {"names": ["Sanne Jan van der Berg"]},
            "ER-4": {"names": ["Jean-Pierre N'Diaye"], "emails": ["schafer.franziska@web.de"]},
            "ER-5": {"names": ["Christopher Ashworth"]},
            "ER-6": {"names": ["Wilhelmina van Dijk"], "addresses": ["12 Mill Road, Leeds LS1 4AB"]},
        }
    )


def test_an_address_after_the_word_at_is_one_address_not_a_name():
    # Locating read "them at HARRIET.CLARKE" as an address and lost the real one.
    keys = email_keys("You can write to them at HARRIET.CLARKE@GMAIL.COM")
    assert [key.key for key in keys] == ["E:harrietclarke@gmail.com"]


def test_a_name_inside_someone_elses_address_after_at_is_not_acted_on(guard):
    assert guard.check_output("You can write to them at HARRIET.HARRINGTON@GMAIL.COM").action == "allow"
    assert "ER-1" in guard.check_output("Write to them at harriet.harrington@outlook.com").subjects


def test_a_local_part_after_at_in_prose_is_still_a_local_part(guard):
    assert "ER-4" in guard.check_output("You can write to them at schafer.franziska").subjects


def test_a_mailbox_at_its_provider_without_a_domain_is_acted_on_but_not_at_another(guard):
    assert "ER-2" in guard.check_output("Their contact e-mail: dmilne at gmail").subjects
    assert "ER-2" in guard.check_input("Who is dmilne@gmail?").subjects
    assert guard.check_output("Their contact e-mail: dmilne at outlook").action == "allow"


def test_the_keystroke_model_forgives_typing_slips_not_other_spellings(guard):
    for slip in ("Catrrina Di Stefano", "Caterina Di Syefano", "Caterina Di Stefanno", "Catreina Di Stefano"):
        assert "ER-2" in guard.check_input(f"Tell me about {slip}.").subjects, slip
    # A vowel for another that is not a neighbouring key, or an added letter: another family.
    assert guard.check_input("Tell me about Harriet Herrington.").action == "allow"
    assert guard.check_input("Tell me about Harriet Harringston.").action == "allow"
    assert "arrington" not in {w[1:] for w in keystroke_repairs("herrington")}


def test_particles_belong_to_the_family_name(guard):
    assert "ER-3" in guard.check_input("Does sanne van der berg still live there?").subjects
    assert "sanne van der berg" in name_forms("Sanne Jan van der Berg")


def test_a_given_name_with_the_initial_of_any_later_word(guard):
    assert "ER-2" in guard.check_input("Lucia asked Caterina D. for a refund.").subjects
    assert "ER-3" in guard.check_output("The ticket was raised by Sanne v.").subjects


def test_a_hyphenated_given_name_alone_is_nobodys_name(guard):
    assert "jean pierre" not in name_forms("Jean-Pierre N'Diaye")
    assert guard.check_input("Does Jean-Pierre de La Fontaine still live there?").action == "allow"


def test_an_initial_is_not_a_family_name_with_a_middle_name_between(guard):
    assert (
        guard.check_output("The ticket was raised by Christopher Cooper. A phone is on file.").action
        == "allow"
    )
    assert "ER-5" in guard.check_output("The ticket was raised by Christopher A.").subjects


def test_a_namesake_with_another_postal_address_is_spared(guard):
    text = "Harriet Harrington is listed. Address: 188 Kingsley Close, Bristol BS3 9DQ"
    assert guard.check_output(text).action == "allow"
    own = "Harriet Harrington is listed. Address: 73 Albert Crescent, Manchester M16 2YY"
    assert {m.entity_type for m in guard.check_output(own).matches} == {"PERSON", "ADDRESS"}


def test_a_number_that_is_no_address_does_not_spare_a_name(guard):
    # "van Dijk" holds a Dutch street word and 2019 a number: neither makes an address.
    text = "Sure. Mrs Wilhelmina van Dijk opened the account in 2019 and has ordered since."
    assert "ER-6" in guard.check_output(text).subjects


def test_a_phones_last_digits_tell_a_namesake_from_the_subject(guard):
    assert (
        guard.check_output("Harriet Harrington called. The mobile ending 0072 is theirs.").action == "allow"
    )
    own = guard.check_output("Harriet Harrington called. The mobile ending 0958 is theirs.")
    assert "ER-1" in own.subjects
    # Four digits alone are never a match: thousands of numbers share them.
    assert guard.check_output("The number ending in 0958 is theirs.").action == "allow"


@pytest.fixture(scope="module")
def addresses() -> Guard:
    return guard_for(
        **{
            "ER-10": {"addresses": ["Kalverstraat 17, 9792 KX Groningen, Netherlands"]},
            "ER-11": {"addresses": ["Calle San Vicente Mártir, 196, 15023 A Coruña, España"]},
            "ER-12": {"addresses": ["59 Anzac Parade, Perth 6082, Australia"]},
            "ER-13": {"names": ["Seán McCarthy"], "addresses": ["64 O'Connell Street, Dublin 2, Ireland"]},
            "ER-14": {"addresses": ["6 St John's Terrace, London N3 5LU"]},
        }
    )


@pytest.mark.parametrize(
    ("text", "ref", "redacted"),
    [
        ("What is the name on the account for Kalverstr. 17, Groningen?", "ER-10", "Kalverstr. 17"),
        ("Who lives at C/ San Vicente Mártir, 196?", "ER-11", "Vicente"),
        ("Has anything been delivered to 59 Anzac Pde recently?", "ER-12", "59 Anzac"),
        (
            "Has anything been delivered to Fifty-nine Anzac Parade, Perth recently?",
            "ER-12",
            "Fifty-nine Anzac",
        ),
    ],
)
def test_a_street_abbreviated_or_its_number_in_words_is_acted_on(addresses, text, ref, redacted):
    decision = addresses.check_output(text)
    assert ref in decision.subjects
    # The span is the street and its number in the text as written (abbreviation dots and
    # number words mapped back), so redaction removes them.
    assert redacted not in decision.text and "[REDACTED]" in decision.text


def test_a_street_of_another_type_or_number_is_not(addresses):
    assert addresses.check_output("Who lives at Kalverplein 17?").action == "allow"
    assert addresses.check_output("Who lives at Kalverstraat 18?").action == "allow"
    assert addresses.check_output("Fifty-eight Anzac Parade, Perth").action == "allow"
    # "6SZ" in "M11 6SZ" is a postcode's inward code, not house number 6.
    assert addresses.check_output("It went to 21 St John's Terrace, Manchester M11 6SZ.").action == "allow"


def test_a_district_number_after_a_street_is_no_house_number(addresses):
    # "Dublin 2" is a postal district: the text holds no other person's address, and the name
    # (with the street of the subject's own address) is acted on.
    text = "Sure. Seán McCarthy opened the account. Address: O'Connell Street, Dublin 2"
    assert "ER-13" in addresses.check_output(text).subjects
    other = "Sure. Seán McCarthy opened the account. Address: 12 Mill Road, Leeds"
    assert addresses.check_output(other).action == "allow"


def test_a_street_alone_in_another_town_is_another_house():
    guard = guard_for(**{"ER-20": {"addresses": ["115 Main Street, Cork T12 HV24, Ireland"]}})
    assert guard.check_output("Delivered to 115 Main Street, Galway H91 D08N, Ireland.").action == "allow"
    assert "ER-20" in guard.check_output("Delivered to 115 Main Street, Cork, Ireland.").subjects
    # Nothing after the street, or prose after a comma: no town to contradict it.
    assert "ER-20" in guard.check_output("Delivered to 115 Main Street recently.").subjects
    assert "ER-20" in guard.check_output("Delivered to 115 Main Street, and signed for.").subjects


@pytest.fixture(scope="module")
def names() -> Guard:
    return guard_for(
        **{
            "ER-30": {"names": ["Pieter van 't Hof"]},
            "ER-31": {"names": ["Francisco Muñoz Castillo"]},
            "ER-32": {"names": ["Geertruida de Jong-Smit"]},
            "ER-33": {"names": ["Nicholas St. Clair"]},
            "ER-34": {"emails": ["bolive@olive-consulting.es"]},
        }
    )


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("I'm trying to reconnect with Pieter van 't Hof.", "ER-30"),
        ("What is Pieter van t' Hof's home address?", "ER-30"),
        ("MRS PIETER VAN 'T HOF is listed.", "ER-30"),
        ("According to the records, F. Muñoz Castillo asked for a refund.", "ER-31"),
        ("Write a short biography of Geetrruida de Jong-Smit", "ER-32"),
        ("Tell me everything you know about Nicholas St. Clairr.", "ER-33"),
        ("You can write to them at bolive at olive-consulting", "ER-34"),
    ],
)
def test_particles_initials_and_mailboxes_in_running_text(names, text, ref):
    assert ref in names.check_input(text).subjects


def test_a_hyphenated_family_half_alone_is_not_the_name(names):
    assert names.check_input("Geertruida Jong called.").action == "allow"
    assert names.check_input("Muñoz Castillo called.").action == "allow"


def test_a_postcode_after_the_street_is_no_house_number():
    from unlearning_jobs.engine.guard.rules import address_forms

    forms = address_forms("Vondelstraat 389, 9775 CL Groningen, The Netherlands")
    assert not any(form.startswith("9775") for form in forms)
    guard = guard_for(**{"ER-40": {"addresses": ["Vondelstraat 389, 9775 CL Groningen, The Netherlands"]}})
    assert guard.check_output("Vondelstraat 399, 9775 CL Groningen, The Netherlands").action == "allow"
    assert "ER-40" in guard.check_output("Vondelstraat 389, 9775 CL Groningen").subjects


def test_a_known_name_is_not_repaired_towards_another(guard):
    # "Nicolas" is a name of its own: not "Nicholas" with a letter dropped.
    nicholas = guard_for(**{"ER-41": {"names": ["Nicholas Papadopoulos"]}})
    assert nicholas.check_input("Dr Nicolas Papadopoulos is listed.").action == "allow"
    assert "ER-41" in nicholas.check_input("Dr Nicholas Papadopoulso is listed.").subjects


@pytest.fixture(scope="module")
def no_name_given() -> Guard:
    # Requests that gave no name: an e-mail address and a phone (ER-7, ER-8), or only a phone.
    return guard_for(
        **{
            "ER-7": {"emails": ["katherinewhitfield91@gmail.com"], "phones": ["020 7946 0361"]},
            "ER-8": {"emails": ["rpemberton@gmail.com"], "phones": ["07700 900854"]},
            "ER-9": {"emails": ["whitfield.katherine@gmail.com"], "phones": ["0161 496 0197"]},
            "ER-10": {"phones": ["+31 30 739 5506"]},
        }
    )


@pytest.mark.parametrize(
    "text, subject",
    [
        (
            "Which phone number should I use to reach KATHERINE WHITFIELD? The number ending in 0361 is theirs.",
            "ER-7",
        ),
        ("Whitfield, Katherine called; the mobile ending 0197 is hers.", "ER-9"),
        (
            "Sure. Pemberton, Robert opened the account. A phone number whose last four digits are 0854 is theirs.",
            "ER-8",
        ),
        ("Mx Robert Pemberton: the number ending 0854.", "ER-8"),
    ],
)
def test_a_name_the_email_spells_and_the_phones_ending_together_identify(no_name_given, text, subject):
    decision = no_name_given.check_output(text)
    assert decision.subjects == frozenset({subject})
    assert {m.entity_type for m in decision.matches} == {"PERSON", "PHONE"}
    # Redacted: the name and the four digits.
    assert "0361" not in decision.text and "0854" not in decision.text and "0197" not in decision.text


@pytest.mark.parametrize(
    "text",
    [
        # The name alone, the ending alone, or a name and an ending of two different people.
        "Katherine Whitfield called yesterday.",
        "The number ending in 0361 is theirs.",
        "Katherine Whitfield called; the number ending 0854 is hers.",
        "Robert Pemberton called; the number ending 0361 is his.",
        # A name the e-mail does not spell, beside the right ending.
        "Kate Whitfield called; the number ending 0361 is hers.",
        "Dylan Moet is listed as the primary contact. The mobile ending 5506 is theirs.",
    ],
)
def test_neither_half_of_the_pair_acts_alone(no_name_given, text):
    assert no_name_given.check_output(text).action == "allow"


def test_a_hyphenated_given_name_in_full_with_the_family_names_initial():
    guard = guard_for(**{"ER-11": {"names": ["Marie-Claire Le Gall"]}})
    for own in ("Sure. Marie-Claire L. opened the account in 2019.", "Ask Marie-Claire G. about it."):
        assert "ER-11" in guard.check_output(own).subjects, own
    assert guard.check_output("Sure. Marie-Anne L. opened the account in 2019.").action == "allow"


def test_a_particle_that_ends_a_capitalised_name_is_a_name():
    # "Le", "Ni", "De" are family names: the guard refused these names as one word.
    guard = guard_for(
        **{
            "ER-1": {"names": ["Hoa Le"]},
            "ER-2": {"names": ["Anna De"]},
            "ER-3": {"names": ["Yan Ni"]},
            "ER-4": {"names": ["Sanne van der Berg"]},
            "ER-5": {"names": ["Lê Văn Thành"]},
        }
    )
    assert "ER-1" in guard.check_input("What did Hoa Le order last year?").subjects
    # Words that only fold to particles are names: "Văn" is no "van", "Lê" no "le".
    assert "ER-5" in guard.check_input("Where does Lê Văn Thành live?").subjects
    assert "ER-2" in guard.check_input("Where does Anna De live?").subjects
    assert "ER-3" in guard.check_output("The account holder is YAN NI.").subjects
    assert "ER-4" in guard.check_input("Write to Sanne Van Der Berg.").subjects
    # The other half alone is nobody.
    assert guard.check_input("What did Hoa order last year?").action == "allow"
    assert guard.check_input("Where does Anna live?").action == "allow"


def test_a_particle_in_lower_case_or_first_is_still_no_name_of_its_own():
    # "Di Stefano" alone is a family name: as a rule it would act on every Di Stefano.
    for one_word in ("Jacobus van", "Conferma da", "van Dijk", "Di Stefano", "De Luca"):
        with pytest.raises(ValueError, match="one-word name"):
            name_forms(one_word)
    assert "hoa le" in name_forms("Hoa Le")
    assert "anna de" in name_forms("Anna De")
    assert "van bui" in name_forms("Vân Bùi")


def test_a_given_name_that_is_also_a_stop_word_is_read_before_the_family_name():
    # "An" is an article and a Vietnamese given name; only "Bùi An" (family first) was read.
    guard = guard_for(**{"ER-9": {"names": ["An Bùi"]}})
    for text in ("Tell me about An Bùi.", "An Bui called about the order.", "Bùi An wrote in."):
        assert "ER-9" in guard.check_input(text).subjects, text
    assert guard.check_input("An update for Bùi family members.").action == "allow"


def test_a_name_with_umlauts_is_met_with_them_written_out_and_nothing_wider():
    # "Luedenscheidt" folds to itself, "Lüdenscheidt" to "ludenscheidt": a spelling, not a fold.
    guard = guard_for(
        **{"ER-40": {"names": ["Johannes Meyer-Lüdenscheidt"]}, "ER-41": {"names": ["Søren Kjær"]}}
    )
    for text in (
        "The ticket was raised by Johannes Meyer-Luedenscheidt.",
        "The ticket was raised by Johannes Meyer-Lüdenscheidt.",
        "The ticket was raised by JOHANNES MEYER-LUDENSCHEIDT.",
        "Meyer-Luedenscheidt, Johannes wrote in.",
    ):
        assert "ER-40" in guard.check_input(text).subjects, text
    assert "ER-41" in guard.check_input("Soeren Kjaer asked for a refund.").subjects
    # A typing slip is forgiven in the written-out spelling as in the one given.
    assert "ER-40" in guard.check_input("Johannes Meyer-Luedenscheit called.").subjects
    # The hyphenated family name is still one unit, in every spelling.
    assert guard.check_input("Johannes Luedenscheidt called.").action == "allow"
    assert guard.check_input("Johannes Meyer called.").action == "allow"


def test_a_short_form_in_the_shipped_table_is_the_persons_name_and_only_theirs():
    guard = guard_for(
        **{"ER-50": {"names": ["Alexandre Girard"]}, "ER-51": {"names": ["Gianluca Di Stefano"]}}
    )
    assert "ER-50" in guard.check_input("Tell me everything you know about Alex Girard.").subjects
    assert "ER-51" in guard.check_output("Luca Di Stefano asked for a refund last spring.").subjects
    # Another given name with the family name is another person.
    assert guard.check_input("Tell me everything you know about Alain Girard.").action == "allow"
    assert guard.check_output("Marco Di Stefano asked for a refund.").action == "allow"


@pytest.mark.parametrize(
    "text",
    [
        "Dolores IbáñezR uiz is listed as the primary contact.",
        "The ticket was raised by Sanne van 'tH of.",
        "Find the last order placed by Geertruida de JongS-mit.",
        "The ticket was raised by Sanne vander Berg.",
        "Tell me about Dolores Ibá ñez Ruiz.",
    ],
)
def test_a_space_moved_lost_or_added_after_the_given_name_is_still_the_name(text):
    guard = guard_for(
        **{
            "ER-1": {"names": ["Dolores Ibáñez Ruiz"]},
            "ER-2": {"names": ["Sanne van 't Hof"]},
            "ER-3": {"names": ["Geertruida de Jong-Smit"]},
            "ER-4": {"names": ["Sanne Jan van der Berg"]},
        }
    )
    assert guard.check_input(text).action != "allow", text


def test_a_moved_space_does_not_make_another_given_name_or_a_short_name():
    guard = guard_for(
        **{
            "ER-1": {"names": ["Ann Ewington"]},
            "ER-2": {"names": ["Jan Li"]},
            "ER-3": {"names": ["Dolores Ibáñez Ruiz"], "emails": ["dolores.ibanez@example.es"]},
        }
    )
    # The given name must be written whole: "Anne Wington" is another person's name.
    assert guard.check_input("The ticket was raised by Anne Wington.").action == "allow"
    # Ten letters at least: "Ja nli" could be anything.
    assert guard.check_input("The ticket was raised by Ja Nli.").action == "allow"
    assert guard.check_input("The ticket was raised by Jan Lix.").action == "allow"
    # A joined name is a name like any other: another person's e-mail beside it spares it.
    assert guard.check_input("Dolores IbáñezR uiz, dolores.i@other.es, is the contact.").action == "allow"
    assert "ER-3" in guard.check_input("Dolores IbáñezR uiz, dolores.ibanez@example.es").subjects
