"""Issue 16, third pass: other people's texts the guard acted on, each cause a mechanism (not a
sample of the probe corpus), with the suppressed person's own text beside it still acted on."""

from .builders import guard_for


def test_a_capital_letter_before_a_family_name_is_not_the_subjects_initial():
    # "Samantha O." is Samantha O'Keefe; in "SAMANTHA Ó DÁLAIGH" the Ó opens another family
    # name, and in "Jane D Smith" the D is a middle initial.
    guard = guard_for(**{"ER-50": {"names": ["Samantha O'Keefe"]}, "ER-51": {"names": ["Jane Doe"]}})
    assert guard.check_output("Sure. SAMANTHA Ó DÁLAIGH opened the account in 2019.").action == "allow"
    assert guard.check_output("Sure. Samantha O Dalaigh opened the account in 2019.").action == "allow"
    assert guard.check_input("Does Jane D Smith still live there?").action == "allow"
    assert "ER-50" in guard.check_output("Sure. Samantha O. opened the account in 2019.").subjects
    assert "ER-50" in guard.check_output("Sure. SAMANTHA O opened the account in 2019.").subjects
    assert "ER-50" in guard.check_output("Sure. Samantha O'Keefe opened the account.").subjects
    assert "ER-51" in guard.check_input("Does Jane D. still live there?").subjects
    assert "ER-51" in guard.check_input("Does Jane Doe still live there?").subjects


def test_a_particle_written_as_a_word_still_stands_for_the_subject():
    # "'t" is the subject's own particle, not a capital letter alone: the misspelt family name
    # after it does not stop "Maarten 't" from naming Maarten 't Hart.
    guard = guard_for(**{"ER-52": {"names": ["Maarten 't Hart"]}})
    assert "ER-52" in guard.check_input("Find the last order placed by Maarten 't Hrt.").subjects


def test_a_street_whose_place_words_are_not_all_the_subjects_is_another_house():
    # "Dublin 2 D02 KPVT": the town is the subject's, the postcode's letters are not.
    guard = guard_for(**{"ER-53": {"addresses": ["65 O'Connell Street, Dublin 8 D08 WWFY, Ireland"]}})
    other = "Registered address — 65 O'CONNELL STREET, DUBLIN 2 D02 KPVT, IRELAND."
    assert guard.check_output(other).action == "allow"
    assert (
        "ER-53" in guard.check_output("Registered address — 65 O'CONNELL STREET, DUBLIN 8 D08 WWFY.").subjects
    )
    assert "ER-53" in guard.check_output("Registered address — 65 O'Connell Street, Dublin 8.").subjects
    assert "ER-53" in guard.check_output("Registered address — 65 O'Connell St, Dublin, Ireland.").subjects


def test_a_street_ending_in_its_type_before_a_comma_and_number_is_someone_elses_address():
    # "GRAN VÍA, 7": the street type ends the street's name; the number after the comma is a
    # house number, so the text carries another person's address and the namesake is spared.
    guard = guard_for(
        **{
            "ER-54": {
                "names": ["Jesús García Márquez"],
                "addresses": ["Avenida de América, 99, 14032 Córdoba, España"],
            }
        }
    )
    other = (
        "J. García Márquez is listed as the primary contact. They live at GRAN VÍA, 7, 11006 CÁDIZ, SPAIN."
    )
    assert guard.check_output(other).action == "allow"
    own = "J. García Márquez is listed as the primary contact. They live at AVENIDA DE AMÉRICA, 99, 14032 CÓRDOBA."
    assert "ER-54" in guard.check_output(own).subjects
    assert "ER-54" in guard.check_output("J. García Márquez is listed as the primary contact.").subjects
    # A year after a street and a comma is no house number: the name still stands.
    assert "ER-54" in guard.check_output("J. García Márquez, Shop Street, 2019 was the year.").subjects


def test_the_particle_of_another_persons_family_name_is_not_the_subjects_initial():
    # The "'t" of another 't Hart's family name is a particle, not Geertruida's initial. Her own
    # texts, with her initial before the particle or her nickname Truus, still name her; an
    # initial is the given name's own, so "T. 't Hart" (Truus's initial) does not.
    guard = guard_for(**{"ER-53": {"names": ["Geertruida 't Hart"]}})
    assert guard.check_input("According to the records, C. 't Hart asked for a refund.").action == "allow"
    assert guard.check_input("Find the last order placed by DAAN 'T HART.").action == "allow"
    assert guard.check_input("T. 't Hart asked for a refund.").action == "allow"
    for own in ("G. 't Hart asked for a refund.", "Truus 't Hart called."):
        assert "ER-53" in guard.check_input(own).subjects, own
