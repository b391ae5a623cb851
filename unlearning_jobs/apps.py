from django.apps import AppConfig


class UnlearningJobsConfig(AppConfig):
    name = "unlearning_jobs"
    verbose_name = "Data sets, models and unlearning jobs"

    def ready(self):
        from requests_app.matching.services import matching_connect
        from unlearning_jobs.jobs.services import jobs_connect

        # Locating starts with the request's own start-locating step, and approval waits for the
        # review of what was located: hooked here because the PII index and candidates live here.
        matching_connect()
        # Decision jobs hold their request in executing until they end, and feed its audit report.
        jobs_connect()
        from unlearning_jobs.verification.services import verification_connect

        verification_connect()  # noqa: E702  (verify jobs, completion check, report)
        from unlearning_jobs.suppression.services import suppression_connect

        suppression_connect()  # noqa: E702  (guards, latent data)
