"""REST endpoints for locating and reviewing a request's records (docs/api.md)."""

from django.urls import path

from requests_app.matching import apis as review_apis

urlpatterns = [
    path(
        "requests/<int:pk>/actions/locate/",
        review_apis.ErasureRequestLocateApi.as_view(),
        name="api-request-locate",
    ),
    path(
        "requests/<int:pk>/matches/",
        review_apis.ErasureRequestMatchesApi.as_view(),
        name="api-request-matches",
    ),
    path(
        "requests/<int:pk>/matches/review/",
        review_apis.ErasureRequestMatchesReviewApi.as_view(),
        name="api-request-matches-review",
    ),
    path(
        "requests/<int:pk>/matches/nothing-found/",
        review_apis.ErasureRequestNothingFoundApi.as_view(),
        name="api-request-matches-nothing-found",
    ),
]
