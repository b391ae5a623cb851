"""Verification: measured evidence of what an erasure achieved (SPEC §6, issue 6).

Pure engine code: nothing here imports Django. Everything comes in as arguments (model,
tokenizer, device, records, thresholds) and goes out as dataclasses that serialise to JSON.

Modules, one job each:

* ``records``      — inputs: ``ForgetRecord``, ``SubjectPii``, ``PiiValue``, ``PiiSpan``, ``TofuItem``
* ``lm``           — the model contract: token log-probs and greedy completions, batched
* ``leaks``        — is a subject's PII in a text (exact or normalised)? masking for display
* ``extraction``   — prefix and question probes, leak rate, masked worst examples
* ``memorisation`` — ROUGE-L and MUSE's VerbMem
* ``membership``   — LOSS, zlib, Min-K%, Min-K%++ scores, ROC AUC, PrivLeak
* ``tofu``         — truth ratio and forget quality (KS test)
* ``utility``      — perplexity and the utility ratio to the original model
* ``thresholds``   — ``Threshold``, defaults, ``evaluate`` (exact at the boundary, NaN fails)
* ``report``       — ``ResultRow``, ``VerificationResult`` (JSON round trip), formatting
* ``suite``        — ``run_verification``, the one call a verify job makes
* ``plot``         — SVG/PNG of membership score distributions

The light modules are re-exported here; the ones that import torch are imported from their
modules (``from unlearning_jobs.engine.verify.suite import run_verification``) so that reading
thresholds or stored results does not load torch.
"""

from .records import ForgetRecord, PiiSpan, PiiValue, SubjectPii, TofuItem
from .report import ResultRow, VerificationResult, format_value, rows_table
from .thresholds import DEFAULT_THRESHOLDS, Threshold, evaluate, resolve_thresholds

__all__ = [
    "ForgetRecord",
    "PiiSpan",
    "PiiValue",
    "SubjectPii",
    "TofuItem",
    "ResultRow",
    "VerificationResult",
    "format_value",
    "rows_table",
    "DEFAULT_THRESHOLDS",
    "Threshold",
    "evaluate",
    "resolve_thresholds",
]
