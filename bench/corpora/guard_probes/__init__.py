"""An independent probe corpus for the output/input guard: texts that name suppressed people, and others.

Why this exists: the guard's own probe suite (``engine/guard/probes.py``) writes each value in
the forms its author knew the guard handles, so it scores 100 %. This corpus was written before
reading the guard's detector or filter, from how people and models actually write identifiers:
e-mails obfuscated ("at"/"dot", brackets), cut to their local part or to "user at provider";
phones national or international, grouped any way, with trunk prefixes, spelt out digit by digit
in words ("oh two oh ...", "double seven", German "null", French "zéro"), or reduced to their last
digits beside the name; names with initials, reversed, with titles, nicknames, accents dropped or
transliterated, and misspelt by one keystroke; addresses abbreviated, on several lines, with the
house number in words, without postcode or country.

Its only interface to Lethe is the request's fields (``names``, ``emails``, ``phones``,
``addresses``, ``account_ids``, ``country``) and plain text. Its knowledge of the world is
``bench/corpora/countries.py`` (postal and numbering conventions, naming customs), written for the
locating corpus without looking at Lethe's code either.

Negatives are other people, drawn so that a guard that over-generalises is caught: namesakes of a
suppressed person (same name, their own e-mail or phone beside it), people whose family name is a
real different spelling one letter away ("Clark" beside "Clarke"), a phone one digit off, a phone
sharing only the last four digits, the same mailbox name at another provider, the same street with
another house number, and unrelated people with their own identifiers.

Each suppressed person's request carries a subset of identifiers (all, e-mail only, phone only,
name only, name + e-mail, name + phone), and every positive text mentions at least one requested
identifier of that person, labelled with its kind and family. Usage:
``python -m bench.corpora.guard_probes --out DIR --people 200 --seed 16``.

Each suppressed person also has **training records** (``records.py``): 3-8 records of the
organisation's data that locating would have found for them (each holds a requested identifier),
with the person's other identifiers and other people's (agents, the company, couriers, other
customers, neighbours) labelled by owner, for measuring the extraction of further identifiers.
They come from a random stream of their own per (seed, person): the texts and requests of a seed
are the same with ``build_probe_corpus(..., with_records=False)``.
"""

from .generate import (
    KINDS,
    NEGATIVE_KINDS,
    Mention,
    ProbeCorpus,
    ProbePerson,
    ProbeText,
    build_probe_corpus,
)
from .records import OWNER_ROLES, RecordMention, TrainingRecord, records_for, records_seed

__all__ = [
    "KINDS",
    "NEGATIVE_KINDS",
    "OWNER_ROLES",
    "Mention",
    "ProbeCorpus",
    "ProbePerson",
    "ProbeText",
    "RecordMention",
    "TrainingRecord",
    "build_probe_corpus",
    "records_for",
    "records_seed",
]
