#!/usr/bin/env bash
# Issue 15's GPU check: the gpu-marked tests, then the fine-tune/unlearn bench and the memory table
# on CUDA in bf16. Prints tokens/s (from the bench's timings) and peak memory per method.
# Run on a machine with an NVIDIA GPU: `bench/gpu_check.sh` (about 8 minutes on one H100/H200).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "No CUDA GPU visible to torch: nothing to check here." >&2
  exit 2
fi
.venv/bin/python -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "bf16:", torch.cuda.is_bf16_supported())'
export TOKENIZERS_PARALLELISM=false
.venv/bin/python -m pytest -p no:django -p no:cacheprovider -m gpu tests/engine -q
mkdir -p var/bench
.venv/bin/python bench/finetune_unlearn.py --bf16 --device cuda --json var/bench/finetune_unlearn_gpu.json
.venv/bin/python bench/memory.py --no-measure --json var/bench/memory_gpu.json
