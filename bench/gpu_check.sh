#!/usr/bin/env bash
# Issues 15 and 16 on a GPU, as one script: the gpu-marked engine tests, then the SmolLM2 TOFU
# bench (LoRA fine-tune; re-fine-tune, SISA over 4 adapters of 4 checkpointed slices each, and
# every approximate method, each verified with the robustness attacks) in bf16 on CUDA, then the
# memory table. (The first H200 run, docs/performance.md "On a GPU", used 1 slice per adapter.) Each stage prints
# its wall time; the bench prints tokens/s and peak GPU memory per method and writes its JSON.
#
#   bench/gpu_check.sh                 # every stage
#   bench/gpu_check.sh tests bench     # some of them: tests, bench, memory
#
# Environment: PYTHON (default .venv/bin/python, else python3), TOFU_DIR (default
# ../shared/data/tofu), GPU_CHECK_OUT (default var/bench/gpu; a device runner's $OUT if set),
# TOFU_AUTHORS (default 10: 1 forgotten, 10 %, 1 held out, 9 fine-tuned on; the first H200 run
# at 20 spent about 290 s training and unlearning and 28 s verifying each of 11 models, 10 minutes
# in all, over the 8-minute budget: TOFU_AUTHORS=20 is issue 16's table run), STAGE_TIMEOUT
# (seconds per stage, default none: the bench writes its JSON as it goes, so a stage cut short
# still leaves what it measured), BENCH_PARAMS (JSON, bench/unlearning.py --params: per-method
# overrides; default caps every approximate method at 150 optimiser steps so the stage fits a
# ten-minute GPU slot, early stops unchanged).
# A stage that fails is reported and the next one still runs; the exit status is the worst one.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
TOFU_DIR=${TOFU_DIR:-../shared/data/tofu}
OUT_DIR=${GPU_CHECK_OUT:-${OUT:-var/bench/gpu}}
TOFU_AUTHORS=${TOFU_AUTHORS:-10}
STAGES=${*:-tests bench memory}
capped='{"max_steps": 150}'
DEFAULT_PARAMS="{\"gradient_ascent\": $capped, \"gradient_difference\": $capped, \"npo\": $capped, \"simnpo\": $capped, \"rmu\": $capped, \"refusal\": $capped}"
BENCH_PARAMS=${BENCH_PARAMS:-$DEFAULT_PARAMS}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "No CUDA GPU visible to torch: nothing to check here." >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'EOF'
import accelerate, peft, torch, transformers
print("GPU:", torch.cuda.get_device_name(0), "| bf16:", torch.cuda.is_bf16_supported(),
      "| torch", torch.__version__, "| transformers", transformers.__version__,
      "| peft", peft.__version__, "| accelerate", accelerate.__version__)
EOF

worst=0
stage() {
  local name=$1
  shift
  local started=$SECONDS
  echo "=== $name: $*"
  timeout "${STAGE_TIMEOUT:-0}" "$@" 2>&1 | grep --line-buffered -v -E 'it/s\]|s/it\]' | tee "$OUT_DIR/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - started)) s"
  [ "$rc" -gt "$worst" ] && worst=$rc
  return 0
}

for s in $STAGES; do
  case $s in
    tests)
      stage tests "$PY" -m pytest -p no:django -p no:cacheprovider -m gpu -q \
        tests/engine/test_training.py tests/engine/test_methods.py \
        tests/engine/test_finetune.py tests/engine/test_sisa_adapters.py \
        tests/engine/test_accelerated_loops.py tests/engine/test_saliency.py
      ;;
    bench)
      stage bench "$PY" bench/unlearning.py --tofu "$TOFU_DIR" --tofu-forget forget10 \
        --tofu-authors "$TOFU_AUTHORS" --finetune-base smollm2 --bf16 --threads 8 \
        --shards 4 --slices 4 --params "$BENCH_PARAMS" --out "$OUT_DIR/unlearning_tofu_finetuned.json"
      ;;
    memory)
      stage memory "$PY" bench/memory.py --no-measure --json "$OUT_DIR/memory.json"
      ;;
    *)
      echo "unknown stage $s (tests, bench, memory)" >&2
      worst=2
      ;;
  esac
done
exit "$worst"
