"""Forms of the officer's pages. They check shapes (types, lengths, choices); the rules are the
services', whose errors are put back onto the fields by ``form_errors_from_service``."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from compliance.api import MAX_DATABASE_ID
from compliance.reports import acceptance
from requests_app.identifiers import (
    IDENTIFIER_LABELS,
    IDENTIFIER_MAX_LENGTHS,
    MAX_IDENTIFIERS_PER_LIST,
    SubjectIdentifiers,
)
from requests_app.models import Channel, IdentityMethod, LegalGround, RejectionGround
from requests_app.selectors import officer_list, status_filter_choices
from requests_app.services import (
    MAX_EXPLANATION_LENGTH,
    MAX_NOTE_LENGTH,
    received_at_validate,
    subject_identifiers_validate,
)

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def form_errors_from_service(form: forms.Form, error: ValidationError) -> None:
    """Attach a service's ``ValidationError`` to the form: per field where it names one."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field_name, messages in error.message_dict.items():
        form.add_error(field_name if field_name in form.fields else None, messages)


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _ids(value: str) -> list[int]:
    """Return the ids in "4, 2; 7"; only ASCII digits count ("²" is a digit to ``str.isdigit``)."""
    ids = []
    for part in (value or "").replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not (part.isascii() and part.isdecimal()) or not 1 <= int(part) <= MAX_DATABASE_ID:
            raise ValidationError("Give ids as positive whole numbers separated by commas.")
        ids.append(int(part))
    return ids


class IdentifierListField(forms.CharField):
    """A textarea with one identifier a line, cleaned to a list of non-empty lines."""

    def __init__(self, list_name: str, **kwargs):
        max_total = (IDENTIFIER_MAX_LENGTHS[list_name] + 2) * MAX_IDENTIFIERS_PER_LIST
        super().__init__(
            required=False,
            max_length=max_total,
            label=IDENTIFIER_LABELS[list_name][1],
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text="One a line.",
            **kwargs,
        )

    def clean(self, value):
        return _lines(super().clean(value))


class ErasureRequestCreateForm(forms.Form):
    received_at = forms.DateTimeField(
        label="Received", widget=DATETIME_WIDGET, help_text="When the request reached the organisation."
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    legal_ground = forms.ChoiceField(choices=LegalGround.choices, label="Legal ground")
    names = IdentifierListField("names")
    emails = IdentifierListField("emails")
    phones = IdentifierListField("phones")
    addresses = IdentifierListField("addresses")
    account_ids = IdentifierListField("account_ids")
    assigned_officer = forms.ModelChoiceField(
        queryset=None, required=False, label="Assigned officer", empty_label="me"
    )
    scope_all = forms.BooleanField(required=False, initial=True, label="All data sets and model versions")
    scope_dataset_ids = forms.CharField(
        required=False,
        max_length=2000,
        label="Data set ids",
        help_text="When not all: ids separated by commas.",
    )
    scope_model_version_ids = forms.CharField(required=False, max_length=2000, label="Model version ids")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_officer"].queryset = officer_list()
        self.fields["received_at"].initial = timezone.localtime().replace(second=0, microsecond=0)

    def clean_scope_dataset_ids(self):
        return _ids(self.cleaned_data["scope_dataset_ids"])

    def clean_scope_model_version_ids(self):
        return _ids(self.cleaned_data["scope_model_version_ids"])

    def clean(self):
        """Report identifier problems together with the other fields' (the service checks again)."""
        cleaned = super().clean()
        lists = {name: cleaned[name] for name in IDENTIFIER_LABELS if name in cleaned}
        if len(lists) == len(IDENTIFIER_LABELS):
            try:
                subject_identifiers_validate(SubjectIdentifiers.from_lists(**lists))
            except ValidationError as error:
                form_errors_from_service(self, error)
        if cleaned.get("received_at"):
            try:
                received_at_validate(cleaned["received_at"])
            except ValidationError as error:
                form_errors_from_service(self, error)
        return cleaned


class NoteForm(forms.Form):
    """A step that needs nothing but may carry a reason for the audit log."""

    note = forms.CharField(
        required=False,
        max_length=MAX_NOTE_LENGTH,
        label="Reason or note",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CompleteForm(NoteForm):
    """Complete the request: one written acceptance for each failed or unmeasured verification row.

    ``failed_rows`` are the rows no acceptance covers yet (``compliance.reports.acceptance``); a
    row left empty stays unaccepted and the completion is refused naming it. ``cleaned_data
    ["acceptances"]`` maps each accepted row's key to the officer's words.
    """

    def __init__(self, *args, failed_rows=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.acceptance_keys: dict[str, str] = {}
        for row in failed_rows:
            key = acceptance.row_key(row)
            name = "accept_" + "".join(c if c.isalnum() else "_" for c in key)
            self.fields[name] = forms.CharField(
                required=False,
                max_length=acceptance.MAX_ACCEPTANCE_LENGTH,
                label=f"Accept {acceptance.row_label(row)}",
                help_text=f"{row.get('subject', '')}. Why completing over this result is acceptable; "
                "printed in the report beside the row.",
                widget=forms.Textarea(attrs={"rows": 2, "data-row-key": key}),
            )
            self.acceptance_keys[name] = key

    def clean(self):
        data = super().clean()
        data["acceptances"] = {
            key: data[name].strip()
            for name, key in self.acceptance_keys.items()
            if (data.get(name) or "").strip()
        }
        return data


class VerifyIdentityForm(forms.Form):
    method = forms.ChoiceField(choices=IdentityMethod.choices, label="How was identity verified?")
    verified_at = forms.DateTimeField(
        required=False, widget=DATETIME_WIDGET, label="When", help_text="Empty: now."
    )
    note = forms.CharField(
        required=False,
        max_length=MAX_NOTE_LENGTH,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required for 'other'. Do not copy document numbers here.",
    )


class ExtendDeadlineForm(forms.Form):
    until = forms.DateTimeField(
        widget=DATETIME_WIDGET,
        label="New deadline",
        help_text="At most three months after receipt (Art. 12(3)).",
    )
    reason = forms.CharField(
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded and shown; the person must be told it.",
    )
    notified_at = forms.DateTimeField(
        required=False,
        widget=DATETIME_WIDGET,
        label="Person told of the extension at",
        help_text="Empty: now.",
    )


class RejectForm(forms.Form):
    ground = forms.ChoiceField(choices=RejectionGround.choices, label="Ground")
    explanation = forms.CharField(
        max_length=MAX_EXPLANATION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Goes into the reply to the person.",
    )


class AssignForm(forms.Form):
    officer = forms.ModelChoiceField(queryset=None, required=False, empty_label="nobody")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["officer"].queryset = officer_list()


class ScopeForm(forms.Form):
    scope_all = forms.BooleanField(required=False, label="All data sets and model versions")
    scope_dataset_ids = forms.CharField(required=False, max_length=2000, label="Data set ids")
    scope_model_version_ids = forms.CharField(required=False, max_length=2000, label="Model version ids")

    def clean_scope_dataset_ids(self):
        return _ids(self.cleaned_data["scope_dataset_ids"])

    def clean_scope_model_version_ids(self):
        return _ids(self.cleaned_data["scope_model_version_ids"])


class RevealForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=MAX_NOTE_LENGTH,
        label="Why",
        help_text="Recorded in the audit log with your name.",
    )


class ErasureRequestFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=254, label="Reference or identifier")
    status = forms.ChoiceField(required=False)
    assignee = forms.ChoiceField(required=False)
    overdue = forms.BooleanField(required=False)
    due_soon = forms.BooleanField(required=False, label="Due in 7 days")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *status_filter_choices()]
        self.fields["assignee"].choices = [
            ("", "Anyone"),
            ("me", "Me"),
            ("none", "Nobody"),
            *((user.username, user.username) for user in officer_list()),
        ]
