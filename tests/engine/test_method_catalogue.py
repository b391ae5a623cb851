"""The torch-free method catalogue: the web side's answer to "is this method exact?"."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from unlearning_jobs.engine.method_catalogue import (
    CATALOGUE,
    EXACT,
    EXACT_METHODS,
    FRAMEWORK_APPROXIMATE,
    FRAMEWORK_OUTPUT_SUPPRESSION,
    framework_of,
    is_exact,
)
from unlearning_jobs.engine.methods import METHODS, CatalogueMismatch, check_catalogue, method_framework

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalogue_is_the_registry_method_for_method():
    assert set(CATALOGUE) == set(METHODS)
    for name, cls in METHODS.items():
        assert CATALOGUE[name].guarantee == cls.guarantee, name
        # The class's own attribute, not method_framework (which answers from the catalogue).
        assert CATALOGUE[name].framework == (EXACT if cls.guarantee == EXACT else cls.framework), name
    assert EXACT_METHODS == {"retrain", "sisa"}
    assert framework_of("refusal") == FRAMEWORK_OUTPUT_SUPPRESSION
    assert framework_of("npo") == FRAMEWORK_APPROXIMATE
    assert method_framework("refusal") == FRAMEWORK_OUTPUT_SUPPRESSION


def test_unknown_names_are_not_exact_and_have_no_framework():
    assert not is_exact("retrain_v0")
    with pytest.raises(ValueError, match="unknown unlearning method 'retrain_v0'; valid methods are"):
        framework_of("retrain_v0")


def test_a_registry_out_of_step_with_the_catalogue_is_refused_naming_each_method():
    # A method declared exact in the catalogue but statistical in its class, one registered only,
    # one catalogued only: the check names all three.
    catalogue = {**CATALOGUE, "npo": replace(CATALOGUE["npo"], guarantee=EXACT, framework=EXACT)}
    catalogue["ghost"] = replace(CATALOGUE["rmu"], name="ghost")
    methods = {name: cls for name, cls in METHODS.items() if name != "simnpo"}
    catalogue.pop("retrain")
    with pytest.raises(CatalogueMismatch) as caught:
        check_catalogue(methods, catalogue)
    message = str(caught.value)
    assert "npo: class says statistical/approximate_unlearning, catalogue says exact/exact" in message
    assert "ghost: in the catalogue, not registered" in message
    assert "retrain: registered, not in the catalogue" in message
    assert "simnpo: in the catalogue, not registered" in message


def test_reading_the_catalogue_imports_no_torch():
    # The web processes read it on every verification queued and every report: it must stay light.
    code = (
        "import sys; import unlearning_jobs.engine.method_catalogue as c; "
        "assert c.is_exact('sisa'); print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]
