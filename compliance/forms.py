"""The sign-in form, with failed attempts throttled per username and address (``compliance/throttle.py``)."""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from compliance.throttle import login_attempt_refusal, login_success


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form that refuses attempts beyond the limit before checking the password."""

    throttled_message = ""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        refusal = login_attempt_refusal(self.request, username)
        if refusal:
            self.throttled_message = refusal
            raise ValidationError(refusal, code="throttled")
        cleaned = super().clean()
        if self.get_user() is not None:  # a right password, not merely a form without one
            login_success(self.request, username)
        return cleaned
