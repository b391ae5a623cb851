"""URLs of output and latent suppression: pages under /jobs/deployments/ and /jobs/derived-stores/,
endpoints under /api/v1/.

``api_urlpatterns`` come before the model routes of ``job_urls`` so that
``models/<id>/generate`` is never read as a model route.
"""

from django.urls import path

from unlearning_jobs.suppression import apis as suppression_apis
from unlearning_jobs.suppression import views as suppression_views

page_urlpatterns = [
    path("deployments/", suppression_views.DeploymentListView.as_view(), name="deployment-list"),
    path("deployments/<int:pk>/", suppression_views.DeploymentDetailView.as_view(), name="deployment-detail"),
    path("derived-stores/", suppression_views.DerivedStoreListView.as_view(), name="derived-store-list"),
]

api_urlpatterns = [
    path("models/<int:pk>/generate", suppression_apis.ModelGenerateApi.as_view(), name="api-model-generate"),
    path("models/<int:pk>/generate/", suppression_apis.ModelGenerateSlashApi.as_view()),
    path(
        "deployments/<int:pk>/rules.json",
        suppression_apis.DeploymentRulesExportApi.as_view(),
        name="api-deployment-rules",
    ),
    path("derived-stores/", suppression_apis.DerivedStoreListCreateApi.as_view(), name="api-derived-stores"),
]
