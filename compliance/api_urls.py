"""Every REST endpoint under /api/v1/, gathered from the apps."""
from django.urls import include, path

urlpatterns = [
    path("", include("requests_app.api_urls")),
    path("", include("unlearning_jobs.api_urls")),
]
