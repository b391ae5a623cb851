from django.urls import path

from unlearning_jobs import (
    job_urls,
    suppression_urls,
    verification_urls,  # before job_urls: jobs/<id>/verification/
    views,
)

app_name = "unlearning_jobs"
urlpatterns = [
    path("", views.EngineerHomeView.as_view(), name="home"),
    path("probe/", views.QueueProbeSendView.as_view(), name="probe"),
    *verification_urls.page_urlpatterns,
    *job_urls.page_urlpatterns,
    *suppression_urls.page_urlpatterns,
]
