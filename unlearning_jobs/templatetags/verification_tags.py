"""Show a job's verification on the job page with one tag, and print values as the engine decides."""

from django import template

from unlearning_jobs.engine.verify.report import format_value
from unlearning_jobs.verification.services import low_fpr_text
from unlearning_jobs.verification.services import verification_for_job as select

register = template.Library()


@register.inclusion_tag("unlearning_jobs/verification_section.html", takes_context=True)
def verification_for_job(context, job):
    """Render the comparison of the job's request (original, reference, produced) and the job's plot."""

    return {**select(job), "job": job, "perms": context.get("perms"), "show_plot": True}


@register.filter
def verification_value(result) -> str:
    """Print a row's value with enough digits that a fail never reads as its limit."""
    return format_value(result.value, result.threshold)


@register.filter
def low_fpr(result) -> str:
    """Print a membership row's TPR at 1 % and 0.1 % FPR with their intervals (empty for other rows)."""
    return low_fpr_text(getattr(result, "details", None))
