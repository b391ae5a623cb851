"""REST endpoints for data sets, models and jobs."""
from unlearning_jobs import job_urls

urlpatterns: list = [
    *job_urls.api_urlpatterns,
]
