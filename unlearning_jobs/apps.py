from django.apps import AppConfig


class UnlearningJobsConfig(AppConfig):
    name = "unlearning_jobs"
    verbose_name = "Data sets, models and unlearning jobs"

    def ready(self):
        from unlearning_jobs.jobs import jobs_connect

        # Decision jobs hold their request in executing until they end, and feed its audit report.
        jobs_connect()
