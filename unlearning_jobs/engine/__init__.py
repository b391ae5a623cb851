"""Lethe's ML engine: PII scanning, training, unlearning methods, suppression, verification.

Pure Python with torch, transformers and Presidio. It never imports Django: every function
takes what it needs as arguments (paths, keys, hyper-parameters, callbacks), so the engine can be
run and tested on a GPU machine without the web application, and reused by other pipelines.
"""
