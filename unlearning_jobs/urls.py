from django.urls import path

from unlearning_jobs import job_urls, views

app_name = "unlearning_jobs"
urlpatterns = [
    path("", views.EngineerHomeView.as_view(), name="home"),
    path("probe/", views.QueueProbeSendView.as_view(), name="probe"),
    *job_urls.page_urlpatterns,
]
