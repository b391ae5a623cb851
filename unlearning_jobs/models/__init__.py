"""Models of unlearning_jobs, one module per concern; all are re-exported here for Django."""
from unlearning_jobs.models.datasets import (
    CandidateStatus,
    Dataset,
    DatasetRecord,
    DatasetVersion,
    DatasetVersionStatus,
    IndexChunk,
    IndexChunkStatus,
    MatchCandidate,
    MatchTier,
    PiiFinding,
    ReingestionHit,
    SearchCoverage,
    SearchCoverageStatus,
)
from unlearning_jobs.models.workers import QueueProbe, WorkerHeartbeat

__all__ = [
    "CandidateStatus",
    "Dataset",
    "DatasetRecord",
    "DatasetVersion",
    "DatasetVersionStatus",
    "IndexChunk",
    "IndexChunkStatus",
    "MatchCandidate",
    "MatchTier",
    "PiiFinding",
    "QueueProbe",
    "ReingestionHit",
    "SearchCoverage",
    "SearchCoverageStatus",
    "WorkerHeartbeat",
]
