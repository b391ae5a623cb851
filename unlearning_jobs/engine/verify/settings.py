"""How verification measures (not what passes: that is ``thresholds``).

Its own module because both the suite and the robustness attacks (which the suite runs) read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .extraction import DEFAULT_QUESTION_TEMPLATES
from .tofu import DEFAULT_QA_TEMPLATE


@dataclass(frozen=True)
class VerificationSettings:
    """How the metrics are measured (not what passes: that is ``thresholds``)."""

    batch_size: int = 8
    max_length: int | None = None
    default_region: str = "GB"
    extraction_max_new_tokens: int = 32
    question_templates: tuple[str, ...] = DEFAULT_QUESTION_TEMPLATES
    prefix_mode: str = "each"
    n_examples: int = 5
    verbmem_prefix_fraction: float = 0.5
    verbmem_max_prefix_tokens: int = 32
    verbmem_max_continuation_tokens: int = 128
    mia_k: float = 0.4
    tofu_qa_template: str = DEFAULT_QA_TEMPLATE

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not 0.0 < self.mia_k <= 1.0:
            raise ValueError(f"mia_k must be in (0, 1], got {self.mia_k}")
        if self.n_examples < 0:
            raise ValueError("n_examples cannot be negative")
        object.__setattr__(self, "question_templates", tuple(self.question_templates))
