"""One of every object a route can name, built through the product's services (this module holds no tests).

The authorisation matrix and the schema fuzzing both need real objects behind the ``<id>`` of
each route: a request in review with its located records, an indexed data-set version, a
registered model, a queued job, a deployment. Nothing here writes rows directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories.jobs import dataset_version_make, request_reviewed

#: An id that no row has: routes given it answer 404 to whoever may use them.
MISSING_ID = 987_654_321


@dataclass(frozen=True)
class ApiWorld:
    """Ids of the objects that fill each kind of ``<id>`` in the URL patterns."""

    request: int
    dataset: int
    dataset_version: int
    model_version: int
    job: int
    deployment: int

    def id_for(self, route: str) -> int:
        """Return the id of the object a route names, from what stands before its ``<id>``."""
        before = re.split(r"\(\?P<|<", route, maxsplit=1)[0].replace("^", "").rstrip("/")
        for marker, value in (
            ("datasets/versions", self.dataset_version),
            ("datasets/hits", MISSING_ID),
            ("datasets", self.dataset),
            ("jobs/models", self.model_version),
            ("models", self.model_version),
            ("deployments", self.deployment),
            ("jobs/requests", self.request),
            ("requests", self.request),
            ("audit/requests", self.request),
            ("jobs", self.job),
        ):
            if before.endswith(marker):
                return value
        raise LookupError(f"No object for the <id> of {route!r}: add its kind to ApiWorld.id_for.")


def tiny_checkpoint(directory: Path) -> Path:
    """Write a tiny but real GPT-2 checkpoint with save_pretrained."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def api_world_build(*, officer, engineer, data_dir: Path) -> ApiWorld:
    """Build one object of each kind through the services and return their ids."""
    from unlearning_jobs.jobs.services import train_job_create
    from unlearning_jobs.registry.services import model_version_register
    from unlearning_jobs.suppression.services import deployment_create

    version = dataset_version_make(engineer=engineer)
    erasure_request = request_reviewed(officer=officer)
    model_version = model_version_register(
        name="support model",
        path=tiny_checkpoint(data_dir / "imported" / "support-model"),
        actor=engineer,
        dataset_version=version,
    )
    job = train_job_create(dataset_version=version, actor=engineer, name="queued model", enqueue=False)
    deployment = deployment_create(
        name="support bot", model_version=model_version, policy=None, actor=engineer
    )
    return ApiWorld(
        request=erasure_request.pk,
        dataset=version.dataset_id,
        dataset_version=version.pk,
        model_version=model_version.pk,
        job=job.pk,
        deployment=deployment.pk,
    )


@pytest.fixture
def api_world(data_dir, officer, engineer) -> ApiWorld:
    return api_world_build(officer=officer, engineer=engineer, data_dir=data_dir)


@pytest.fixture
def admin_user(db):
    """A superuser, as ``createsuperuser`` makes one: every permission, no role group."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("admin", "admin@example.org", "lethe-admin-password-9")


def api_token(user) -> str:
    """Return a new API token of the user, stored as ``create_api_token`` stores it.

    Made without the command's audit event, so tests that count the rows a call writes see only the call's.
    """
    from compliance.tokens import api_token_row

    return api_token_row(user=user, name="tests")[1]


__all__ = [
    "MISSING_ID",
    "ApiWorld",
    "admin_user",
    "api_token",
    "api_world",
    "api_world_build",
    "tiny_checkpoint",
]
