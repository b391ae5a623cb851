"""REST endpoints for data sets, models and jobs."""
from unlearning_jobs import verification_urls  # before job_urls: jobs/<id>/verification/
from unlearning_jobs import job_urls

urlpatterns: list = [
    *verification_urls.api_urlpatterns,
    *job_urls.api_urlpatterns,
]
