"""Fixtures for the PII engine tests: one hashing key and one loaded Presidio engine per session.

Loading spaCy and Presidio takes seconds, so every test that needs the real engine shares one.
"""

from __future__ import annotations

import pytest

from unlearning_jobs.engine.pii.hashing import KeyedHasher

TEST_KEY = b"lethe-test-key-0123456789abcdef!"


@pytest.fixture(scope="session")
def hasher() -> KeyedHasher:
    return KeyedHasher(key=TEST_KEY, key_id="test-key-1")


@pytest.fixture(scope="session")
def scan_engine():
    """Return the process's ``ScanEngine`` with default settings (loaded once)."""
    from unlearning_jobs.engine.pii.scan import ScanSettings, get_scan_engine

    return get_scan_engine(ScanSettings())
