"""Data-set registration as a job on the cpu queue (``services``)."""
