"""Locate personal data in training records: normalise, hash, scan with Presidio, read data sets.

Pure engine code: nothing here imports Django. Keys, paths and configurations are arguments.
Modules, one job each: ``entities`` (Lethe's entity types), ``normalise`` (value folding and
name variants), ``hashing`` (keyed HMAC of normalised values), ``analyzer`` (the Presidio engine
and its recorded configuration), ``readers`` (JSONL/CSV/Parquet/text records), ``scan`` (records
to hashed findings, fast and in parallel).
"""
