"""Models of unlearning_jobs, one module per concern; all are re-exported here for Django."""
from unlearning_jobs.models.workers import QueueProbe, WorkerHeartbeat

__all__ = ["QueueProbe", "WorkerHeartbeat"]
