"""REST endpoints for data sets, models and jobs."""

from unlearning_jobs.jobs import urls as job_urls
from unlearning_jobs.suppression import urls as suppression_urls
from unlearning_jobs.verification import urls as verification_urls

urlpatterns: list = [
    *verification_urls.api_urlpatterns,
    *suppression_urls.api_urlpatterns,  # first: models/<id>/generate is not a model route
    *job_urls.api_urlpatterns,
]
