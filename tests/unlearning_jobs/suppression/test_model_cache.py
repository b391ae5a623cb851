"""The generate endpoint keeps at most LETHE_GENERATE_MODELS_CACHED models loaded per process."""

from __future__ import annotations

import pytest

from tests.factories.jobs import *  # noqa: F401,F403
from tests.factories.jobs import model_train
from unlearning_jobs.suppression import guard

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_jobs")]


def test_the_least_recently_used_model_is_dropped_past_the_limit(tickets, engineer, settings):
    first = model_train(dataset_version=tickets, engineer=engineer).produced_model
    second = model_train(dataset_version=tickets, engineer=engineer).produced_model
    settings.LETHE_GENERATE_MODELS_CACHED = 1
    guard._MODELS.clear()

    loaded_first = guard.model_load_cached(first)
    assert guard.model_load_cached(first) is loaded_first  # cached while within the limit
    guard.model_load_cached(second)
    assert list(guard._MODELS) == [(second.pk, second.weights_sha256)]
    assert guard.model_load_cached(first) is not loaded_first  # dropped, so loaded again

    settings.LETHE_GENERATE_MODELS_CACHED = 2
    guard.model_load_cached(second)
    guard.model_load_cached(first)  # the most recently used stays at the end
    assert list(guard._MODELS) == [(second.pk, second.weights_sha256), (first.pk, first.weights_sha256)]
    guard._MODELS.clear()
