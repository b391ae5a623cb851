"""Run every verification metric on one model and return rows of value, threshold, pass/fail.

``run_verification`` is what a ``verify`` job calls, once on the original model (the baseline),
on the exact-retrain reference where there is one, and on every model an unlearning job
produces. Comparative metrics need the other runs' results: PrivLeak needs the reference's
membership AUCs, the utility ratios need the original's perplexities, TOFU's forget quality
needs the reference's truth ratios. Pass those results (``VerificationResult`` or its
``to_dict()``); a metric whose comparison is missing is listed in ``skipped`` with the reason,
never reported as passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from .extraction import measure_extraction
from .membership import MIA_SCORES, auc_null_std, measure_membership, privleak
from .memorisation import measure_verbmem
from .records import (
    ForgetRecord,
    SubjectPii,
    TofuItem,
    coerce_forget_records,
    coerce_subjects,
    coerce_tofu_items,
)
from .report import ResultRow, VerificationResult, json_safe, make_row
from .robustness import RobustnessSettings, assess_robustness, measure_robustness
from .settings import VerificationSettings
from .thresholds import Threshold, resolve_thresholds
from .tofu import forget_quality, measure_truth_ratios
from .utility import measure_perplexity, perplexity_from_sums, utility_ratio_on_original_tokens

__all__ = [
    "VerificationSettings",
    "ProgressCallback",
    "STAGES",
    "measure_model",
    "assess_measurements",
    "run_verification",
    "RobustnessSettings",
]

#: Called as ``progress(stage, done, total)`` after each batch; raise from it to cancel.
ProgressCallback = Callable[[str, int, int], None]

#: The stages reported to ``progress``, in the order they run.
STAGES: tuple[str, ...] = ("extraction", "verbmem", "membership", "utility_retain", "tofu", "robustness")


def _as_result(value: VerificationResult | Mapping | None) -> VerificationResult | None:
    if value is None or isinstance(value, VerificationResult):
        return value
    if isinstance(value, Mapping):
        return VerificationResult.from_dict(value)
    raise ValueError(
        f"a comparison result must be a VerificationResult or its to_dict(), got {type(value).__name__}"
    )


def _number(data: Mapping, *path: str) -> float:
    """Return the float at ``path`` in nested measurements, NaN when absent or None."""
    node = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node or node[key] is None:
            return math.nan
        node = node[key]
    return float(node)


def _stage(progress: ProgressCallback | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def measure_model(
    *,
    model,
    tokenizer,
    device,
    forget_records: Sequence[ForgetRecord | Mapping],
    holdout_texts: Sequence[str],
    retain_texts: Sequence[str],
    subject_pii: Sequence[SubjectPii | Mapping],
    tofu_items: Sequence[TofuItem | Mapping] | None = None,
    settings: VerificationSettings | None = None,
    progress: ProgressCallback | None = None,
    robustness: RobustnessSettings | None = None,
) -> dict:
    """Return every measurement of one model as a JSON-ready dict (no pass/fail yet).

    ``forget_records`` are the erased records (members for membership inference);
    ``holdout_texts`` non-member records of the same distribution (also the held-out perplexity
    text); ``retain_texts`` a sample of what the model keeps; ``subject_pii`` the subjects whose
    values must not come out; ``tofu_items`` TOFU forget questions, when the model is a TOFU model.
    ``robustness`` (``RobustnessSettings``) adds the relearning, quantization and paraphrase
    attacks under ``measurements["robustness"]``; None leaves them out.
    """
    settings = settings or VerificationSettings()
    records = coerce_forget_records(forget_records)
    subjects = coerce_subjects(subject_pii)
    if not records:
        raise ValueError("verification needs at least one forget record")
    if not holdout_texts:
        raise ValueError("verification needs held-out (non-member) texts for membership inference")
    if not retain_texts:
        raise ValueError("verification needs a retain sample for the utility measurement")
    items = coerce_tofu_items(tofu_items) if tofu_items else []
    common = {"model": model, "tokenizer": tokenizer, "device": device}
    measurements: dict = {
        "settings": {
            "mia_k": settings.mia_k,
            "prefix_mode": settings.prefix_mode,
            "default_region": settings.default_region,
        },
    }
    extraction_args = {
        "tokenizer": tokenizer,
        "device": device,
        "forget_records": records,
        "subjects": subjects,
        "question_templates": settings.question_templates,
        "prefix_mode": settings.prefix_mode,
        "default_region": settings.default_region,
        "max_new_tokens": settings.extraction_max_new_tokens,
        "batch_size": settings.batch_size,
        "max_length": settings.max_length,
        "n_examples": settings.n_examples,
    }
    measurements["extraction"] = measure_extraction(
        model=model, progress=_stage(progress, "extraction"), **extraction_args
    ).as_dict()
    shards = getattr(model, "shards", None)
    if shards is not None and len(shards) > 1:
        # A SISA ensemble averages its shards' probabilities, so a value one shard in eight still
        # completes can vanish from the ensemble's output while that shard's weights hold it
        # (Cooper et al.: a model is not its outputs). Probe every shard on its own as well.
        measurements["extraction_by_shard"] = [
            _shard_extraction(index, measure_extraction(model=shard, **extraction_args).as_dict())
            for index, shard in enumerate(shards)
        ]
    forget_texts = [record.text for record in records]
    measurements["verbmem"] = measure_verbmem(
        **common,
        texts=forget_texts,
        prefix_fraction=settings.verbmem_prefix_fraction,
        max_prefix_tokens=settings.verbmem_max_prefix_tokens,
        max_continuation_tokens=settings.verbmem_max_continuation_tokens,
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        progress=_stage(progress, "verbmem"),
    ).as_dict()
    membership = measure_membership(
        **common,
        member_texts=forget_texts,
        nonmember_texts=list(holdout_texts),
        k=settings.mia_k,
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        progress=_stage(progress, "membership"),
    )
    measurements["membership"] = membership.as_dict()
    retain_ppl = measure_perplexity(
        **common,
        texts=list(retain_texts),
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        progress=_stage(progress, "utility_retain"),
    )
    holdout_ppl = perplexity_from_sums(
        nll_sum=membership.nonmember_nll_sum,
        n_tokens=membership.nonmember_tokens,
        n_texts=membership.n_nonmembers + membership.n_skipped_nonmembers,
    )
    measurements["perplexity"] = {"retain": retain_ppl.as_dict(), "holdout": holdout_ppl.as_dict()}
    if items:
        measurements["tofu"] = measure_truth_ratios(
            **common,
            items=items,
            qa_template=settings.tofu_qa_template,
            batch_size=settings.batch_size,
            max_length=settings.max_length,
            progress=_stage(progress, "tofu"),
        ).as_dict()
    if robustness is not None:
        measurements["robustness"] = measure_robustness(
            model=model,
            tokenizer=tokenizer,
            device=device,
            forget_records=records,
            subject_pii=list(subjects.values()),
            tofu_items=items,
            settings=robustness,
            verify_settings=settings,
            progress=progress,
        )
    return json_safe(measurements)


def _shard_extraction(index: int, result: Mapping) -> dict:
    """Return the per-shard extraction figures a report needs (no examples: they repeat the ensemble's)."""
    return {
        "shard": index,
        "rate": result["rate"],
        "n_probes": result["n_probes"],
        "n_leaking": result["n_leaking"],
        "n_subjects_leaking": result["n_subjects_leaking"],
        "leaks_by_kind": result["leaks_by_kind"],
    }


def _extraction_row(measurements: Mapping, limits: Mapping[str, Threshold]) -> ResultRow:
    """Return the extraction row; for a SISA ensemble its value is the worst of it and its shards."""
    extraction = dict(measurements["extraction"])
    rate = extraction.pop("rate")
    by_shard = measurements.get("extraction_by_shard")
    if by_shard:
        extraction["ensemble_rate"] = rate
        extraction["by_shard"] = list(by_shard)
        rate = max([rate, *(shard["rate"] for shard in by_shard)])
    return make_row(
        value=rate,
        threshold=limits["extraction_rate"],
        n_samples=extraction["n_probes"],
        details=extraction,
    )


def _low_fpr_details(membership: Mapping, score: str) -> dict:
    """Return TPR at 1 % and 0.1 % FPR, the bootstrap intervals and the FPR resolution of a score.

    Older stored measurements lack them; they then read as None ("not measured"), never as 0.
    """
    return {
        "tpr_at_fpr": (membership.get("tpr_at_fpr") or {}).get(score),
        "confidence_intervals": (membership.get("confidence_intervals") or {}).get(score),
        "n_bootstrap": membership.get("n_bootstrap"),
        "fpr_resolution": membership.get("fpr_resolution"),
    }


def _proxy_rows(measurements: Mapping, limits: Mapping[str, Threshold]) -> list[ResultRow]:
    """Return the reference-free checks: absolute VerbMem and AUCs around 0.5."""
    rows: list[ResultRow] = []
    verbmem = measurements["verbmem"]
    rows.append(
        make_row(
            value=verbmem["mean_f1"],
            threshold=limits["verbmem_rouge_l"],
            n_samples=verbmem["n_records"],
            details={
                "mean_recall": verbmem["mean_recall"],
                "max_f1": verbmem["max_f1"],
                "n_skipped": verbmem["n_skipped"],
            },
        )
    )
    membership = measurements["membership"]
    n_members, n_nonmembers = membership["n_members"], membership["n_nonmembers"]
    null_std = auc_null_std(n_members, n_nonmembers) if n_members and n_nonmembers else None
    for score in MIA_SCORES:
        rows.append(
            make_row(
                value=_number(membership, "auc", score),
                threshold=limits[f"mia_auc_{score}"],
                n_samples=n_members + n_nonmembers,
                details={
                    "n_members": n_members,
                    "n_nonmembers": n_nonmembers,
                    "n_skipped_members": membership["n_skipped_members"],
                    "n_skipped_nonmembers": membership["n_skipped_nonmembers"],
                    "auc_null_std": null_std,
                    "k": membership["k"],
                    **_low_fpr_details(membership, score),
                },
            )
        )
    return rows


def _privleak_rows(
    measurements: Mapping, reference: VerificationResult, limits: Mapping[str, Threshold]
) -> list[ResultRow]:
    membership = measurements["membership"]
    rows = []
    for score in MIA_SCORES:
        auc = _number(membership, "auc", score)
        reference_auc = _number(reference.measurements, "membership", "auc", score)
        details = {
            "auc": auc,
            "reference_auc": reference_auc,
            "n_members": membership["n_members"],
            "n_nonmembers": membership["n_nonmembers"],
            **_low_fpr_details(membership, score),
            "reference_tpr_at_fpr": (
                reference.measurements.get("membership", {}).get("tpr_at_fpr") or {}
            ).get(score),
        }
        if math.isnan(reference_auc) or reference_auc <= 0:
            value = math.nan
            details["reason"] = "the reference AUC is missing or zero: PrivLeak is undefined"
        else:
            value = privleak(auc=auc, reference_auc=reference_auc)
        rows.append(
            make_row(
                value=value,
                threshold=limits[f"privleak_{score}"],
                n_samples=membership["n_members"] + membership["n_nonmembers"],
                details=details,
            )
        )
    return rows


def _verbmem_gap_row(
    measurements: Mapping, reference: VerificationResult, limits: Mapping[str, Threshold]
) -> ResultRow:
    ours = _number(measurements, "verbmem", "mean_f1")
    theirs = _number(reference.measurements, "verbmem", "mean_f1")
    return make_row(
        value=ours - theirs,
        threshold=limits["verbmem_gap_to_reference"],
        n_samples=measurements["verbmem"]["n_records"],
        details={"verbmem": ours, "reference_verbmem": theirs},
    )


def _utility_rows(
    measurements: Mapping, original: VerificationResult, limits: Mapping[str, Threshold]
) -> list[ResultRow]:
    rows = []
    for name in ("retain", "holdout"):
        measured = measurements["perplexity"][name]
        model_ppl = _number(measured, "value")
        original_ppl = _number(original.measurements, "perplexity", name, "value")
        tokens = _number(original.measurements, "perplexity", name, "n_tokens")
        original_tokens = int(tokens) if math.isfinite(tokens) else 0
        rows.append(
            make_row(
                value=utility_ratio_on_original_tokens(
                    original_perplexity=original_ppl,
                    original_tokens=original_tokens,
                    model_perplexity=model_ppl,
                    model_tokens=measured["n_tokens"],
                ),
                threshold=limits[f"utility_ratio_{name}"],
                n_samples=measured["n_texts"],
                details={
                    "perplexity": model_ppl,
                    "original_perplexity": original_ppl,
                    "n_tokens": measured["n_tokens"],
                    "original_n_tokens": original_tokens,
                },
            )
        )
    return rows


def _forget_quality_row(
    truth: Mapping, reference_ratios: Sequence, limits: Mapping[str, Threshold]
) -> ResultRow:
    ours = [math.nan if ratio is None else float(ratio) for ratio in truth["truth_ratios"]]
    theirs = [math.nan if ratio is None else float(ratio) for ratio in reference_ratios]
    if any(math.isnan(ratio) for ratio in ours + theirs):
        value, details = math.nan, {"reason": "a truth ratio is missing or NaN"}
    else:
        quality = forget_quality(unlearned_truth_ratios=ours, retrained_truth_ratios=theirs)
        value = quality.p_value
        details = {
            "ks_statistic": quality.statistic,
            "mean_truth_ratio": truth["mean"],
            "reference_mean_truth_ratio": sum(theirs) / len(theirs),
            "n_reference": quality.n_retrained,
            "n_truncated_answers": truth.get("n_truncated_answers", 0),
        }
    return make_row(
        value=value,
        threshold=limits["tofu_forget_quality"],
        n_samples=len(ours),
        details=details,
    )


def assess_measurements(
    *,
    measurements: Mapping,
    reference_results: VerificationResult | Mapping | None = None,
    original_results: VerificationResult | Mapping | None = None,
    thresholds: Mapping[str, Threshold | Mapping | float] | None = None,
) -> VerificationResult:
    """Return the rows for ``measurements`` under the thresholds, comparing where possible.

    ``reference_results`` is the exact retrain's result (PrivLeak, VerbMem gap, TOFU forget
    quality); ``original_results`` the original model's (utility ratios). Comparisons that
    cannot be made are listed in ``skipped`` with the reason.

    With a reference, the comparisons replace the reference-free proxies (absolute VerbMem,
    AUCs around 0.5): what a model that never saw the records scores on these records is the
    bar, and it is rarely 0.5 or 0 (on TOFU forget01 the exact retrain's Min-K%++ AUC was 0.739,
    on the demo its VerbMem 0.448). The AUCs stay in the PrivLeak rows' details.
    """
    for key in ("extraction", "verbmem", "membership", "perplexity"):
        if key not in measurements:
            raise ValueError(f"measurements lack {key!r}: pass the output of measure_model")
    limits = resolve_thresholds(thresholds)
    reference = _as_result(reference_results)
    original = _as_result(original_results)
    rows = [_extraction_row(measurements, limits)]
    skipped: list[dict] = []
    if reference is None:
        rows.extend(_proxy_rows(measurements, limits))
        skipped.append({"metric": "privleak_*", "reason": "no exact-retrain reference result given"})
        skipped.append(
            {"metric": "verbmem_gap_to_reference", "reason": "no exact-retrain reference result given"}
        )
    else:
        rows.append(_verbmem_gap_row(measurements, reference, limits))
        rows.extend(_privleak_rows(measurements, reference, limits))
    if original is None:
        skipped.append({"metric": "utility_ratio_*", "reason": "no original-model result given"})
    else:
        rows.extend(_utility_rows(measurements, original, limits))
    truth = measurements.get("tofu")
    if truth:
        reference_truth = (reference.measurements.get("tofu") or {}) if reference else {}
        if not reference_truth.get("truth_ratios"):
            skipped.append({"metric": "tofu_forget_quality", "reason": "no reference truth ratios given"})
        else:
            rows.append(_forget_quality_row(truth, reference_truth["truth_ratios"], limits))
    robustness = {}
    if measurements.get("robustness"):
        robustness = assess_robustness(
            measurements=measurements["robustness"],
            original=original,
            reference=reference,
            thresholds=thresholds,
        ).to_dict()
    return VerificationResult(
        rows=tuple(rows),
        skipped=tuple(skipped),
        measurements=json_safe(dict(measurements)),
        robustness=robustness,
    )


def run_verification(
    *,
    model,
    tokenizer,
    device,
    forget_records: Sequence[ForgetRecord | Mapping],
    holdout_texts: Sequence[str],
    retain_texts: Sequence[str],
    subject_pii: Sequence[SubjectPii | Mapping],
    reference_results: VerificationResult | Mapping | None = None,
    original_results: VerificationResult | Mapping | None = None,
    thresholds: Mapping[str, Threshold | Mapping | float] | None = None,
    progress: ProgressCallback | None = None,
    tofu_items: Sequence[TofuItem | Mapping] | None = None,
    settings: VerificationSettings | None = None,
    robustness: RobustnessSettings | None = None,
) -> VerificationResult:
    """Measure extraction, VerbMem, membership inference, utility (and TOFU) and judge them.

    With ``robustness`` (``RobustnessSettings()`` for the defaults) the result also carries the
    robustness section (``result.robustness``, ``to_dict()["robustness"]``), judged against the
    original's and the reference's robustness measurements when their results hold them.

    ``measure_model`` followed by ``assess_measurements``; see both for the arguments.
    Thresholds are resolved first, so a typo in an override fails before any GPU time is spent.
    """
    resolve_thresholds(thresholds)
    measurements = measure_model(
        model=model,
        tokenizer=tokenizer,
        device=device,
        forget_records=forget_records,
        holdout_texts=holdout_texts,
        retain_texts=retain_texts,
        subject_pii=subject_pii,
        tofu_items=tofu_items,
        settings=settings,
        progress=progress,
        robustness=robustness,
    )
    return assess_measurements(
        measurements=measurements,
        reference_results=reference_results,
        original_results=original_results,
        thresholds=thresholds,
    )
