"""URLs of jobs, model versions and the decision: pages under /jobs/, endpoints under /api/v1/.

``page_urlpatterns`` are included by ``unlearning_jobs.urls`` (namespace ``unlearning_jobs``);
``api_urlpatterns`` by ``unlearning_jobs.api_urls``.
"""

from django.urls import path

from unlearning_jobs.decisions import apis as decision_apis
from unlearning_jobs.jobs import apis as job_apis
from unlearning_jobs.jobs import views as job_views
from unlearning_jobs.registry import apis as registry_apis
from unlearning_jobs.registry import views as registry_views

page_urlpatterns = [
    path("all/", job_views.JobListView.as_view(), name="job-list"),
    path("<int:pk>/", job_views.JobDetailView.as_view(), name="job-detail"),
    path("<int:pk>/state.json", job_views.JobStateJsonView.as_view(), name="job-state"),
    path("<int:pk>/actions/<slug:action>/", job_views.JobActionView.as_view(), name="job-action"),
    path("<int:pk>/params/", job_views.JobParamsView.as_view(), name="job-params"),
    path("models/", registry_views.ModelListView.as_view(), name="model-list"),
    path("models/register/", registry_views.ModelRegisterView.as_view(), name="model-register"),
    path("models/<int:pk>/", registry_views.ModelDetailView.as_view(), name="model-detail"),
    path("train/", registry_views.TrainJobCreateView.as_view(), name="train"),
    path("models/import/", registry_views.ModelImportView.as_view(), name="model-import"),
    path("finetune/", registry_views.FinetuneJobCreateView.as_view(), name="finetune"),
]

api_urlpatterns = [
    path("jobs/", job_apis.JobListApi.as_view(), name="api-jobs"),
    path("jobs/<int:pk>/", job_apis.JobDetailApi.as_view(), name="api-job-detail"),
    path("jobs/<int:pk>/actions/<slug:action>/", job_apis.JobActionApi.as_view(), name="api-job-action"),
    path("jobs/<int:pk>/params/", job_apis.JobParamsApi.as_view(), name="api-job-params"),
    path("models/", registry_apis.ModelListCreateApi.as_view(), name="api-models"),
    path("models/<int:pk>/", registry_apis.ModelDetailApi.as_view(), name="api-model-detail"),
    # The request's approval is the decision: the plan of frameworks and methods, or none.
    path(
        "requests/<int:pk>/actions/approve/",
        decision_apis.ErasureDecisionApproveApi.as_view(),
        name="api-request-decision-approve",
    ),
    path(
        "requests/<int:pk>/decisions/",
        decision_apis.ErasureDecisionListApi.as_view(),
        name="api-request-decisions",
    ),
]
