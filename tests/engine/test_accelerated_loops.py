"""From-scratch training, SISA shard training and the approximate methods use ``accelerate.Accelerator``.

All are single-process loops: started as one of several processes they must refuse, not train
N copies that write the same checkpoints and output. And because a worker process runs one job
after another, the process-wide accelerate state must follow each job's device and precision.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearning_jobs.engine.device import make_accelerator
from unlearning_jobs.engine.methods import get_method

from .conftest import FORGET_NAME, make_records

ROOT = Path(__file__).resolve().parents[2]

#: Run in every process of ``accelerate launch``: try training and unlearning, record what happened.
CHILD = """
import json, os, sys
spec = json.loads(open(sys.argv[1]).read())
from unlearning_jobs.engine.methods import get_method
from unlearning_jobs.engine.training import TrainingRecipe, train_causal_lm

rank = os.environ["RANK"]
outcome = {}
try:
    train_causal_lm(
        texts=spec["texts"], recipe=TrainingRecipe(**spec["recipe"]),
        output_dir=os.path.join(spec["out"], "train-" + rank), device="cpu",
    )
    outcome["train"] = "ran"
except ValueError as error:
    outcome["train"] = str(error)
try:
    get_method("npo").run(
        source_model_dir=spec["model"], output_dir=os.path.join(spec["out"], "npo-" + rank),
        forget_texts=spec["forget"], retain_texts=spec["retain"], params={"max_steps": 2}, device="cpu",
    )
    outcome["npo"] = "ran"
except ValueError as error:
    outcome["npo"] = str(error)
with open(os.path.join(spec["out"], "outcome-" + rank + ".json"), "w") as handle:
    json.dump(outcome, handle)
"""


#: Run in every process of ``accelerate launch``: try SISA training, record what happened.
SISA_CHILD = """
import json, os, sys
spec = json.loads(open(sys.argv[1]).read())
from unlearning_jobs.engine.training import TrainingRecipe
from unlearning_jobs.engine.training.sisa import train_sisa

rank = os.environ["RANK"]
try:
    train_sisa(
        records=spec["records"], recipe=TrainingRecipe(**spec["recipe"]), shards=2, slices=2,
        output_dir=os.path.join(spec["out"], "sisa-" + rank),
        checkpoint_dir=os.path.join(spec["out"], "ckpt-" + rank), device="cpu",
    )
    outcome = "ran"
except ValueError as error:
    outcome = str(error)
with open(os.path.join(spec["out"], "outcome-" + rank + ".json"), "w") as handle:
    json.dump({"sisa": outcome}, handle)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch_two_cpu_processes(child: Path, spec: Path) -> None:
    """Run ``child spec`` as 2 processes under ``accelerate launch`` (gloo on the CPU)."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # with device="cpu" each child's Accelerator(cpu=True) uses gloo
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(child),
        str(spec),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_under_two_processes_training_and_unlearning_refuse_and_write_no_model(
    trained_model, tiny_recipe, tmp_path
):
    records = [text for _, text in make_records()]
    out = tmp_path / "out"
    out.mkdir()
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "texts": records,
                "recipe": tiny_recipe.as_dict(),
                "model": trained_model,
                "forget": [t for t in records if FORGET_NAME in t],
                "retain": [t for t in records if FORGET_NAME not in t],
                "out": str(out),
            }
        )
    )
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    _launch_two_cpu_processes(child, spec)
    for rank in ("0", "1"):
        outcome = json.loads((out / f"outcome-{rank}.json").read_text())
        assert "train_causal_lm runs in one process" in outcome["train"]
        assert "one of 2" in outcome["train"]
        assert "npo runs in one process" in outcome["npo"]
        assert "one of 2" in outcome["npo"]
    assert sorted(p.name for p in out.iterdir()) == ["outcome-0.json", "outcome-1.json"]


@pytest.mark.slow
def test_under_two_processes_sisa_training_refuses_before_writing_anything(tiny_recipe, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"records": make_records(16), "recipe": tiny_recipe.as_dict(), "out": str(out)})
    )
    child = tmp_path / "child.py"
    child.write_text(SISA_CHILD)
    _launch_two_cpu_processes(child, spec)
    for rank in ("0", "1"):
        outcome = json.loads((out / f"outcome-{rank}.json").read_text())
        assert "SISA shard training runs in one process" in outcome["sisa"]
        assert "one of 2" in outcome["sisa"]
    # No shard, tokenizer or work directory: neither the output nor the checkpoint directory exists.
    assert sorted(p.name for p in out.iterdir()) == ["outcome-0.json", "outcome-1.json"]


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize(
    "device, dtype",
    [("cpu", torch.float32), pytest.param("cuda", torch.bfloat16, marks=[pytest.mark.gpu, CUDA])],
)
def test_unlearn_moves_the_model_to_the_device_and_gives_it_back_unwrapped(trained_model, device, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    records = [text for _, text in make_records()]
    model = AutoModelForCausalLM.from_pretrained(trained_model)
    tokenizer = AutoTokenizer.from_pretrained(trained_model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    outcome = get_method("gradient_ascent").unlearn(
        model=model,
        tokenizer=tokenizer,
        forget_records=[t for t in records if FORGET_NAME in t],
        retain_records=[t for t in records if FORGET_NAME not in t],
        params={"learning_rate": 2e-3, "max_steps": 5, "max_retain_loss_increase": None},
        block_size=48,
        device=device,
        dtype=dtype,
    )
    assert outcome.steps == 5
    assert outcome.metrics["forget_loss_after"] > outcome.metrics["forget_loss_before"]
    # Changed in place, on the asked device, fp32 weights, and (after a bf16 run) no accelerate
    # autocast wrapper left on its forward.
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v.cpu(), before[k])]
    assert changed
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {(device, torch.float32)}
    assert "_original_forward" not in model.__dict__


@pytest.mark.gpu
@CUDA
def test_one_process_follows_each_jobs_device_and_precision_in_turn():
    # A worker process runs jobs one after another: a bf16 fine-tune, then a job pinned to the
    # CPU, then fp32 on the GPU, then a job pinned to a GPU by index (LETHE_JOB_DEVICE=cuda:0).
    first = make_accelerator(None, bf16=True)
    assert (first.device.type, first.mixed_precision) == ("cuda", "bf16")
    on_cpu = make_accelerator("cpu")
    assert (on_cpu.device.type, on_cpu.mixed_precision) == ("cpu", "no")
    back = make_accelerator("cuda")
    assert (back.device.type, back.mixed_precision) == ("cuda", "no")
    pinned = make_accelerator("cuda:0", bf16=True)
    assert (pinned.device, pinned.mixed_precision) == (torch.device("cuda:0"), "bf16")
    assert "ACCELERATE_TORCH_DEVICE" not in os.environ
