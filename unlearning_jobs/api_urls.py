"""REST endpoints for data sets, models and jobs."""

from unlearning_jobs import (
    job_urls,
    suppression_urls,
    verification_urls,  # before job_urls: jobs/<id>/verification/
)

urlpatterns: list = [
    *verification_urls.api_urlpatterns,
    *suppression_urls.api_urlpatterns,  # first: models/<id>/generate is not a model route
    *job_urls.api_urlpatterns,
]
