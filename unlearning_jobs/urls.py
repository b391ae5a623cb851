from django.urls import path

from unlearning_jobs.jobs import urls as job_urls
from unlearning_jobs.suppression import urls as suppression_urls
from unlearning_jobs.verification import urls as verification_urls
from unlearning_jobs.workers import views

app_name = "unlearning_jobs"
urlpatterns = [
    path("", views.EngineerHomeView.as_view(), name="home"),
    path("probe/", views.QueueProbeSendView.as_view(), name="probe"),
    *verification_urls.page_urlpatterns,
    *job_urls.page_urlpatterns,
    *suppression_urls.page_urlpatterns,
]
