"""The fast NER path must give exactly the entities that spaCy's full pipeline gives."""

from __future__ import annotations

from unlearning_jobs.engine.pii.ner import ner_components, pipe_entities

TEXTS = [
    "Hi, my name is Jaime Vasquez and I live in Santiago, Chile.",
    "Customer Rebekah Coleman (rebekah.coleman57@hotmail.com) reported a late delivery.",
    "",
    "no capitals here, just bill from accounts asking about london",
    "Agent note: spoke with Dr. Priya Natarajan, born on 3 May 1990, who lives in Leeds.",
    "Ticket #33998: Chloe Clark says the invoice sent to chloe.clark80@gmail.com is wrong.",
    "   ",
    "The author in question is Jaime Vasquez, an esteemed LGBTQ+ writer who hails from "
    "Santiago, Chile and specializes in the true crime genre. " * 3,
]


def _ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def test_sm_model_ner_needs_no_other_component(scan_engine):
    assert ner_components(scan_engine.nlp) == ["ner"]


def test_fast_path_entities_equal_full_pipeline(scan_engine):
    nlp = scan_engine.nlp
    expected = [_ents(doc) for doc in nlp.pipe(TEXTS)]
    with nlp.select_pipes(enable=scan_engine.ner_components):
        for batch_size in (1, 3, 64):
            got = [
                _ents(doc)
                for doc in pipe_entities(
                    nlp, TEXTS, components=scan_engine.ner_components, batch_size=batch_size
                )
            ]
            assert got == expected
    assert any(expected)
