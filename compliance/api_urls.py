"""Every REST endpoint under /api/v1/, gathered from the apps."""

from django.urls import include, path

from compliance.reports import apis as report_apis

# Audit reports and the register (docs/reports.md). Completion that issues the report lives at
# report/complete/, beside the request workflow's own actions/<action>/ routes, not among them.
report_urlpatterns = [
    path("requests/<int:pk>/report.json", report_apis.ReportJsonApi.as_view(), name="api-report-json"),
    path("requests/<int:pk>/report.pdf", report_apis.ReportPdfApi.as_view(), name="api-report-pdf"),
    path("requests/<int:pk>/reports/", report_apis.ReportVersionsApi.as_view(), name="api-report-versions"),
    path("requests/<int:pk>/report/issue/", report_apis.ReportIssueApi.as_view(), name="api-report-issue"),
    path(
        "requests/<int:pk>/report/complete/",
        report_apis.ReportCompleteApi.as_view(),
        name="api-report-complete",
    ),
    path("reports/verify/", report_apis.ReportVerifyApi.as_view(), name="api-report-verify"),
    path("reports/keys/", report_apis.ReportPublicKeysApi.as_view(), name="api-report-keys"),
    path("register.csv", report_apis.RegisterCsvApi.as_view(), name="api-register-csv"),
]

urlpatterns = [
    # requests/<id>/actions/approve/ is the decision (its plan), served by unlearning_jobs; no other app has that route.
    path("", include("unlearning_jobs.api_urls")),
    path("", include("requests_app.matching.api_urls")),
    path("", include("requests_app.api_urls")),
    path("", include("unlearning_jobs.datasets.api_urls")),
    *report_urlpatterns,
]
