"""Run a fine-tune in ``num_processes`` data-parallel processes with ``accelerate launch``.

One process runs :func:`~.finetune.finetune` directly. More start as children of
``accelerate launch`` (torchrun underneath: DDP over NCCL on GPUs, over gloo on the CPU) that all
run the same :func:`finetune`; this parent relays their progress, turns ``should_stop()`` into a
stop file the children poll, and reads the main child's result. The gpu worker calls this from
its job process, so a job's ``num_processes`` is the only thing that changes between one GPU and
eight.

Why ``--multi_gpu`` even on the CPU: ``accelerate launch --cpu --num_processes 2`` (accelerate
1.16) starts a single process; multi-process CPU runs go through the same torchrun launcher as
GPUs, and ``Accelerator(cpu=True)`` in each child then selects gloo (``DistributedType.MULTI_CPU``).

The spec file passes records as JSON, so records must be JSON-serialisable (strings or
prompt/answer objects), which is what data sets hold anyway.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .finetune import (
    FinetuneParams,
    FinetuneResult,
    ProgressCallback,
    StopCallback,
    finetune,
    normalise_finetune_records,
)
from .train import TrainingCancelled

PROGRESS_PREFIX = "LETHE_PROGRESS "
_TAIL = 4000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_command(*, spec_path: Path, num_processes: int, cpu: bool) -> list[str]:
    """Return the ``accelerate launch`` command line that runs :func:`main` in ``num_processes``."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",  # bf16 is the Accelerator's own setting (FinetuneParams.bf16), not the launcher's
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "unlearning_jobs.engine.training.launch",
        str(spec_path),
    ]


def finetune_launch(
    *,
    base_model_dir: str | os.PathLike,
    records,
    params: FinetuneParams | Mapping[str, Any] | None,
    output_dir: str | os.PathLike,
    data_identity: Any = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    device=None,
    overwrite: bool = False,
) -> FinetuneResult:
    """Fine-tune like :func:`finetune`, in ``params.num_processes`` processes (1: in this process).

    Same arguments, result, files, cancellation and resume as :func:`finetune`; the children's
    stderr tail is in the ``RuntimeError`` raised when they fail.
    """
    if not isinstance(params, FinetuneParams):
        params = FinetuneParams.from_dict(params)
    common = {
        "base_model_dir": base_model_dir,
        "params": params,
        "output_dir": output_dir,
        "data_identity": data_identity,
        "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": checkpoint_every,
        "device": device,
        "overwrite": overwrite,
    }
    if params.num_processes == 1:
        return finetune(records=records, progress=progress, should_stop=should_stop, **common)
    import torch

    cpu = device is not None and str(device).startswith("cpu")
    if not cpu and not torch.cuda.is_available():
        cpu = True
    with tempfile.TemporaryDirectory(prefix="lethe-launch-") as tmp:
        tmp = Path(tmp)
        spec = {
            **{k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in common.items()},
            "params": params.as_dict(),
            "device": "cpu" if cpu else None,
            "records": [[rid, rec] for rid, rec in normalise_finetune_records(records)],
            "stop_file": str(tmp / "stop"),
            "result_file": str(tmp / "result.json"),
        }
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        stderr_path = tmp / "stderr.log"
        with open(stderr_path, "wb") as stderr:
            child = subprocess.Popen(
                launch_command(spec_path=spec_path, num_processes=params.num_processes, cpu=cpu),
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                text=True,
            )
            for line in child.stdout:
                if line.startswith(PROGRESS_PREFIX):
                    step, total = (int(x) for x in line[len(PROGRESS_PREFIX) :].split())
                    if progress is not None:
                        progress(step, total)
                    if should_stop is not None and should_stop():
                        (tmp / "stop").touch()
            code = child.wait()
        result_path = tmp / "result.json"
        outcome = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else None
        if outcome is not None and outcome.get("cancelled"):
            cancelled = outcome["cancelled"]
            raise TrainingCancelled(
                step=cancelled["step"], total=cancelled["total"], checkpoint=cancelled.get("checkpoint")
            )
        if code != 0 or outcome is None:
            tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-_TAIL:]
            raise RuntimeError(f"accelerate launch failed with exit code {code}:\n{tail}")
        data = outcome["result"]
        data["epoch_losses"] = tuple(data["epoch_losses"])
        return FinetuneResult(**data)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: run :func:`finetune` from a spec file; the main process writes the result."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    stop_file = Path(spec["stop_file"])
    result_file = Path(spec["result_file"])

    def progress(step: int, total: int) -> None:
        print(f"{PROGRESS_PREFIX}{step} {total}", flush=True)

    def should_stop() -> bool:
        return stop_file.exists()

    params = FinetuneParams.from_dict(spec["params"])
    try:
        result = finetune(
            base_model_dir=spec["base_model_dir"],
            records=[(rid, rec) for rid, rec in spec["records"]],
            params=params,
            output_dir=spec["output_dir"],
            data_identity=spec["data_identity"],
            progress=progress,
            should_stop=should_stop,
            checkpoint_dir=spec["checkpoint_dir"],
            checkpoint_every=int(spec["checkpoint_every"]),
            device=spec["device"],
            overwrite=bool(spec["overwrite"]),
        )
    except TrainingCancelled as exc:
        if int(os.environ.get("RANK", "0")) == 0:
            cancelled = {"step": exc.step, "total": exc.total, "checkpoint": exc.checkpoint}
            result_file.write_text(json.dumps({"cancelled": cancelled}), encoding="utf-8")
        return 0
    if int(os.environ.get("RANK", "0")) == 0:
        tmp = result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"result": result.as_dict()}), encoding="utf-8")
        os.replace(tmp, result_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
