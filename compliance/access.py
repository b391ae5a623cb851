"""Access checks shared by every page: a logged-in user with the right permission, else 403."""

from django.contrib.auth.mixins import PermissionRequiredMixin


class PermissionPageMixin(PermissionRequiredMixin):
    """Require ``permission_required``; anonymous users go to login, others get 403.

    Django's mixin already answers 403 (not a redirect loop) to an authenticated user who lacks
    the permission, which is what a person who followed another role's link should see.
    """

    raise_exception = False
