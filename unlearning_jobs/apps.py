from django.apps import AppConfig


class UnlearningJobsConfig(AppConfig):
    name = "unlearning_jobs"
    verbose_name = "Data sets, models and unlearning jobs"
