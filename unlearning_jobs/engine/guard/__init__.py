"""Suppress erased subjects' data at a model's inputs and outputs (output and latent suppression).

Pure engine code: nothing here imports Django. Modules, one job each: ``policy`` (what a
deployment does on a match), ``rules`` (keyed-hash rules from a subject's identifiers, JSON
export), ``digest`` (the index's keyed hash, fast), ``detect`` (candidate spans in one pass),
``filter`` (the guard: input and output filters, system prompt), ``probes`` (probe suites and
latent probes), ``measure`` (block rate, false positives, added latency).
"""
