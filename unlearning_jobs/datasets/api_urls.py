"""REST endpoints for data sets (docs/api.md)."""

from django.urls import path

from unlearning_jobs.datasets import apis as dataset_apis

urlpatterns = [
    path("datasets/", dataset_apis.DatasetListCreateApi.as_view(), name="api-datasets"),
    path("datasets/<int:pk>/", dataset_apis.DatasetDetailApi.as_view(), name="api-dataset-detail"),
    path(
        "datasets/versions/<int:pk>/resume/",
        dataset_apis.DatasetVersionResumeApi.as_view(),
        name="api-dataset-version-resume",
    ),
]
