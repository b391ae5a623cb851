"""REST endpoints for erasure requests (docs/api.md)."""

from django.urls import path

from requests_app import apis

urlpatterns = [
    path("requests/", apis.ErasureRequestListCreateApi.as_view(), name="api-requests"),
    path("requests/search/", apis.ErasureRequestSearchApi.as_view(), name="api-requests-search"),
    path("requests/<int:pk>/", apis.ErasureRequestDetailApi.as_view(), name="api-request-detail"),
    path("requests/<int:pk>/events/", apis.ErasureRequestEventsApi.as_view(), name="api-request-events"),
    *(
        path(f"requests/<int:pk>/actions/{action}/", api_class.as_view(), name=f"api-request-{action}")
        for action, api_class in apis.ACTION_APIS.items()
    ),
]
