"""Registering checkpoints by path: where from, what is checked, the checksum, the command and the API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from compliance.models import AuditEvent
from tests.factories.jobs import data_dir, fast_jobs, tickets  # noqa: F401  (fixtures)
from unlearning_jobs.engine.checkpoints import weights_sha256
from unlearning_jobs.models import ModelVersion
from unlearning_jobs.registry.services import (
    ModelActionNotPermitted,
    ModelRegistrationError,
    model_version_register,
)

pytestmark = [pytest.mark.django_db]


def _checkpoint(directory: Path, *, architectures=("GPT2LMHeadModel",)) -> Path:
    """Write a tiny but real GPT-2 checkpoint with save_pretrained."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(directory)
    if architectures != ("GPT2LMHeadModel",):
        data = json.loads((directory / "config.json").read_text())
        data["architectures"] = list(architectures)
        (directory / "config.json").write_text(json.dumps(data))
    return directory


def test_a_checkpoint_is_registered_where_it_lies_with_the_checksum_of_its_weights(data_dir, engineer):
    directory = _checkpoint(data_dir / "imported" / "gpt2-small-ft")

    version = model_version_register(name="support model v3", path=directory, actor=engineer, notes="prod")

    assert version.path == str(directory.resolve()) and version.kind == "hf"
    assert version.weights_sha256 == weights_sha256(directory)
    assert version.is_external and version.dataset_version is None and version.recipe == {}
    event = AuditEvent.objects.get(action="model_version.registered", object_id=str(version.pk))
    assert event.actor == engineer and event.details["weights_sha256"] == version.weights_sha256


def test_paths_outside_the_allowed_roots_are_refused_even_through_a_link(
    data_dir, engineer, tmp_path, settings
):
    outside = _checkpoint(tmp_path / "elsewhere")
    link = data_dir / "innocent"
    link.symlink_to(outside, target_is_directory=True)

    for path in (outside, link, data_dir / ".." / "elsewhere"):
        with pytest.raises(ModelRegistrationError) as error:
            model_version_register(name="x", path=path, actor=engineer)
        assert "Not an allowed location" in error.value.message_dict["path"][0]

    settings.LETHE_IMPORT_ROOTS = [tmp_path / "elsewhere"]
    assert model_version_register(name="x", path=outside, actor=engineer).path == str(outside.resolve())


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("missing", "no such directory"),
        ("empty", "neither config.json"),
        ("no-weights", "no weight files"),
        ("classifier", "not a causal language model"),
    ],
)
def test_what_is_not_a_causal_lm_checkpoint_is_refused_with_the_reason(problem, expected, data_dir, engineer):
    directory = data_dir / problem
    if problem == "empty":
        directory.mkdir()
    elif problem == "no-weights":
        _checkpoint(directory)
        (directory / "model.safetensors").unlink()
    elif problem == "classifier":
        _checkpoint(directory, architectures=("BertForSequenceClassification",))
    with pytest.raises(ModelRegistrationError) as error:
        model_version_register(name="x", path=directory, actor=engineer)
    assert expected in error.value.message_dict["path"][0]
    assert not ModelVersion.objects.exists()


def test_a_directory_is_registered_once_and_only_by_an_engineer(data_dir, engineer, officer, auditor):
    directory = _checkpoint(data_dir / "once")
    for user in (officer, auditor):
        with pytest.raises(ModelActionNotPermitted) as error:
            model_version_register(name="x", path=directory, actor=user)
        assert "may not register models" in str(error.value)
    first = model_version_register(name="x", path=directory, actor=engineer)
    with pytest.raises(ModelRegistrationError) as error:
        model_version_register(name="y", path=directory, actor=engineer)
    assert str(first) in error.value.message_dict["path"][0]


def test_a_lethe_trained_model_brings_its_recipe_and_sisa_layout(tickets, engineer, data_dir, settings):
    from tests.factories.jobs import model_train

    settings.LETHE_JOB_DEVICE = "cpu"
    trained = model_train(dataset_version=tickets, engineer=engineer, sisa_shards=2).produced_model
    copy = data_dir / "copy-of-sisa"
    shutil.copytree(trained.path, copy)
    version = model_version_register(
        name="copy", path=copy, actor=engineer, dataset_version=tickets, parent=trained
    )
    assert version.kind == "sisa"
    assert version.recipe["sisa"]["shards"] == 2 and version.recipe["sisa"]["slices"] == 2
    assert (
        version.recipe["n_embd"] == trained.recipe["n_embd"]
        and version.weights_sha256 == trained.weights_sha256
    )


def test_the_register_model_command_prints_the_checksum_and_fails_cleanly(data_dir, engineer, capsys):
    directory = _checkpoint(data_dir / "by-command")
    call_command("register_model", "--name", "cmd", "--path", str(directory), "--user", "engineer")
    out = capsys.readouterr().out
    assert weights_sha256(directory) in out and "model version" in out
    with pytest.raises(CommandError, match="already registered"):
        call_command("register_model", "--name", "cmd", "--path", str(directory))
    with pytest.raises(CommandError, match="No data-set version"):
        call_command("register_model", "--name", "cmd", "--path", str(directory), "--dataset-version", "999")


def test_the_api_registers_and_lists_models_for_engineers_only(data_dir, role_users):
    from rest_framework.test import APIClient

    directory = _checkpoint(data_dir / "by-api")
    clients = {}
    for name, user in role_users.items():
        clients[name] = APIClient()
        clients[name].force_authenticate(user)
    body = {"name": "api model", "path": str(directory)}

    assert clients["officer"].post("/api/v1/models/", body, format="json").status_code == 403
    assert clients["auditor"].post("/api/v1/models/", body, format="json").status_code == 403
    bad = clients["engineer"].post("/api/v1/models/", {"name": "x", "path": "/etc"}, format="json")
    assert bad.status_code == 400 and "Not an allowed location" in bad.data["path"][0]
    created = clients["engineer"].post("/api/v1/models/", body, format="json")
    assert created.status_code == 201
    assert created.data["sha256"] == weights_sha256(directory) and created.data["parent"] is None
    assert set(created.data) >= {"id", "name", "path", "sha256", "parent", "dataset_version"}
    for reader in ("engineer", "officer", "auditor"):
        listed = clients[reader].get("/api/v1/models/")
        assert listed.status_code == 200 and listed.data["results"][0]["id"] == created.data["id"]
    anonymous = APIClient().get("/api/v1/models/")
    assert anonymous.status_code in (401, 403)
