"""Pages for data sets, under /datasets/ (namespace ``datasets``)."""

from django.urls import path

from unlearning_jobs.datasets import views as dataset_views

app_name = "datasets"
urlpatterns = [
    path("", dataset_views.DatasetListView.as_view(), name="list"),
    path("upload/", dataset_views.DatasetUploadView.as_view(), name="upload"),
    path("<int:pk>/", dataset_views.DatasetDetailView.as_view(), name="detail"),
    path(
        "versions/<int:pk>/progress.json", dataset_views.DatasetVersionProgressView.as_view(), name="progress"
    ),
    path("versions/<int:pk>/resume/", dataset_views.DatasetVersionResumeView.as_view(), name="resume"),
    path("hits/<int:pk>/override/", dataset_views.ReingestionOverrideView.as_view(), name="override"),
]
