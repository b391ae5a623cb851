"""Locate personal data in training records: normalise, hash, scan with Presidio, read data sets.

Pure engine code: nothing here imports Django. Keys, paths and configurations are arguments.
Modules, one job each: ``entities`` (Lethe's entity types), ``normalise`` (value folding and
name variants), ``hashing`` (keyed HMAC of normalised values), ``recognisers`` (addresses,
account ids, dates of birth), ``analyzer`` (the Presidio engine and its recorded
configuration), ``ner`` (the NER alone, decoded fast), ``readers`` (JSONL/JSON/CSV/Parquet/text
records), ``scan`` (records to hashed findings, in one process or a pool), ``linking`` (which
values in a person's own records are theirs). See docs/pii.md.
"""

import os as _os

# Presidio's e-mail recogniser uses tldextract, which fetches the public suffix list when first
# used unless told to keep to its bundled copy; scanning machines have no internet access. Set
# here so that it holds whichever submodule is imported first.
_os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
