from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from compliance import (
    api,
    views,
)
from compliance.forms import ThrottledAuthenticationForm
from compliance.reports import views as report_views
from unlearning_jobs.decisions.views import ErasureDecisionView

compliance_patterns = (
    [
        path("", views.AuditorHomeView.as_view(), name="home"),
        path("requests/<int:pk>/", views.AuditorRequestView.as_view(), name="request"),
        path("requests/<int:pk>/report/", report_views.ReportPageView.as_view(), name="report"),
        re_path(
            r"^requests/(?P<pk>[0-9]+)/report\.(?P<file_format>json|pdf)$",
            report_views.ReportDownloadView.as_view(),
            name="report-download",
        ),
        path("requests/<int:pk>/report/issue/", report_views.ReportIssueView.as_view(), name="report-issue"),
        path(
            "requests/<int:pk>/report/complete/",
            report_views.ReportCompleteView.as_view(),
            name="report-complete",
        ),
        path("register/", report_views.RegisterView.as_view(), name="register"),
        path("register.csv", report_views.RegisterDownloadView.as_view(), name="register-csv"),
        path("verify/", report_views.ReportVerifyView.as_view(), name="verify"),
    ],
    "compliance",
)

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm), name="login"
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("start-panel/dismiss/", views.StartPanelDismissView.as_view(), name="start-panel-dismiss"),
    path("audit/", include(compliance_patterns)),
    path("requests/<int:pk>/decision/", ErasureDecisionView.as_view(), name="erasure-decision"),
    path("requests/", include("requests_app.matching.urls")),
    path("requests/", include("requests_app.urls")),
    path("datasets/", include("unlearning_jobs.datasets.urls")),
    path("jobs/", include("unlearning_jobs.urls")),
    path("api/v1/", include("compliance.api_urls")),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Last of the API: any other path under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^api/", api.ApiNotFoundView.as_view(), name="api-not-found"),
    path("admin/", admin.site.urls),
]

handler400 = "compliance.api.bad_request"
handler500 = "compliance.api.server_error"
