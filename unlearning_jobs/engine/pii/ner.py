"""Run a spaCy pipeline's named-entity recogniser over many texts, fast and with the same output.

Two things make spaCy's stock ``nlp.pipe`` slow for a PII scan, neither of which changes the
entities:

* it runs every component (tagger, parser, lemmatizer…), though in ``en_core_web_sm`` the NER
  has its own embedding layer and needs none of them: ``ner_components`` returns only the NER
  and any ``tok2vec`` it listens to;
* the transition-based decoder (``Parser.greedy_parse``) releases the GIL for its loop, but
  its validity checks (spaCy 3.8 built with Cython 3) re-acquire it for every candidate move of
  every token, so most of the NER's time goes to locking. ``decode_entities`` drives the same
  model and the same transition system step by step from Python, holding the GIL, as spaCy's
  own beam and training code does: the NER as a whole ran two to three times faster.

``use_numpy_gemm`` moves the NER's dense layers from BLIS to numpy's BLAS (OpenBLAS), which is
faster on x86. The entities were identical to ``nlp.pipe``'s on every benchmark and test text;
``tests/engine/pii/test_ner.py`` keeps checking that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

__all__ = ["ner_components", "use_numpy_gemm", "decode_entities", "pipe_entities"]


def ner_components(nlp) -> list[str]:
    """Return the pipeline components the NER needs: itself and any tok2vec it listens to."""
    if "ner" not in nlp.pipe_names:
        raise ValueError("the spaCy model has no 'ner' component")
    needed = {"ner"}
    for name, component in nlp.pipeline:
        listeners = getattr(component, "listening_components", None) or []
        if "ner" in listeners:
            needed.add(name)
    return [name for name in nlp.pipe_names if name in needed]


def use_numpy_gemm(nlp, components: Sequence[str]) -> None:
    """Make ``components``' layers multiply matrices with numpy (OpenBLAS) instead of BLIS."""
    from thinc.api import NumpyOps

    ops = NumpyOps(use_blis=False)
    for name in components:
        for node in nlp.get_pipe(name).model.walk():
            node.ops = ops


def decode_entities(ner, docs: list) -> None:
    """Set ``doc.ents`` on freshly tokenised ``docs`` with the NER component ``ner``.

    Same model, same transition system and same arg-max over valid moves as
    ``ner.predict``/``ner.set_annotations``; only the loop over steps runs in Python.
    The docs must carry no entity annotation yet (straight from the tokenizer).
    """
    if not docs:
        return
    batch = ner.moves.init_batch(docs)
    states = [state for state in batch if not state.is_final()]
    if states:
        model = ner.model.predict(docs)
        while states:
            scores = model.predict(states)
            states = ner.transition_states(states, scores)
        model.clear_memory()
    ner.set_annotations(docs, batch)


def pipe_entities(nlp, texts: Iterable[str], *, components: Sequence[str], batch_size: int = 256) -> Iterator:
    """Yield one ``Doc`` with entities per text, in order, running only ``components``."""
    ner = nlp.get_pipe("ner")
    others = [nlp.get_pipe(name) for name in components if name != "ner"]
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            yield from _process(nlp, ner, others, batch)
            batch = []
    if batch:
        yield from _process(nlp, ner, others, batch)


def _process(nlp, ner, others: list, texts: list[str]) -> list:
    docs = [nlp.make_doc(text) for text in texts]
    for component in others:
        docs = list(component.pipe(docs))
    decode_entities(ner, docs)
    return docs
