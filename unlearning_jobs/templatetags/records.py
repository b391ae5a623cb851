"""``{{ record.record_id|record_id_for:request.user }}``: a record's id for officers, its keyed hash for others."""

from django import template

from unlearning_jobs.datasets.storage import record_id_for as _record_id_for

register = template.Library()


@register.filter
def record_id_for(record_id: str, user) -> str:
    return _record_id_for(record_id, user)
