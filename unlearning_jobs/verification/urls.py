"""URLs of verification: pages under /jobs/ (namespace ``unlearning_jobs``), endpoints under /api/v1/."""

from django.urls import path

from unlearning_jobs.verification import apis as verification_apis
from unlearning_jobs.verification import views as verification_views

page_urlpatterns = [
    path("<int:pk>/verification/", verification_views.JobVerificationView.as_view(), name="verification-job"),
    path(
        "requests/<int:pk>/verification/",
        verification_views.RequestVerificationView.as_view(),
        name="verification-request",
    ),
]

api_urlpatterns = [
    path(
        "jobs/<int:pk>/verification/",
        verification_apis.JobVerificationApi.as_view(),
        name="api-job-verification",
    ),
    path(
        "requests/<int:pk>/verification/",
        verification_apis.RequestVerificationApi.as_view(),
        name="api-request-verification",
    ),
]
