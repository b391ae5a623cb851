"""Audit reports: one signed, versioned report per erasure request (docs/reports.md).

Modules, each with one job:

- ``providers``: the registry other apps fill with the sections they own (records, decisions,
  jobs, verification, recipients), read through plain dicts;
- ``sections``: one small function per report section;
- ``limits``: the statements of what the frameworks applied do not guarantee (Cooper et al.);
- ``assembly``: the report body, its schema check and the guard against raw identifiers;
- ``schema.json`` / ``schema``: the versioned JSON Schema of the body;
- ``keys`` / ``signing``: the HMAC key and its id, canonical JSON, SHA-256 and HMAC;
- ``json_file`` / ``pdf``: the two file formats; ``chart`` draws the verification plot;
- ``verification``: checks a downloaded file against its signature and the stored record;
- ``register``: the register of all requests (Art. 5(2), Art. 30) as CSV;
- ``services`` / ``selectors``: issuing, recording downloads, and reads for pages and the API.

Importing this package imports nothing from Django, so ``settings.py`` can use ``keys``.
"""
