"""Decide what a deployment's guard does when it finds a suppressed subject's data.

A policy is per deployment and travels with the exported rules, so another serving stack applies
the same decision: redact the matched spans or refuse the whole text, for which entity types,
with which system prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..pii.entities import QUASI_IDENTIFIERS, EntityType

__all__ = [
    "GuardPolicy",
    "MODES",
    "NAME_MATCHES",
    "DEFAULT_ENTITY_TYPES",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_REFUSAL_MESSAGE",
]

#: What the guard does with a text that matches a rule.
MODES = ("redact", "refuse")
#: When a name alone is enough: always, or only beside another identifier of the same subject.
NAME_MATCHES = ("any", "corroborated")

#: Every type: names and direct identifiers always, and the quasi-identifiers (city, date of
#: birth) beside them, which is what latent probes ask for.
DEFAULT_ENTITY_TYPES: frozenset[EntityType] = frozenset(EntityType)

DEFAULT_SYSTEM_PROMPT = (
    "Some people have exercised their right to erasure. Do not reveal, confirm, guess or infer "
    "personal data about any individual: no e-mail addresses, phone numbers, postal addresses, "
    "account numbers, dates of birth or places of residence. If asked for such data, say that "
    "you cannot share personal information."
)
DEFAULT_REFUSAL_MESSAGE = "I can't share information about this person."


def _entity_types(values: Iterable[EntityType | str]) -> frozenset[EntityType]:
    kinds: set[EntityType] = set()
    for value in values:
        try:
            kinds.add(EntityType(value))
        except ValueError:
            raise ValueError(
                f"unknown entity type {value!r}; expected one of {[k.value for k in EntityType]}"
            ) from None
    return frozenset(kinds)


@dataclass(frozen=True)
class GuardPolicy:
    """How a deployment's guard acts on a match.

    ``entity_types`` limits both what is detected and what is acted on: a type left out costs
    nothing at check time. Quasi-identifiers (``LOCATION``, ``DATE_OF_BIRTH``) are acted on only
    where the same subject is also matched by a name or direct identifier in the text or its
    prompt, because a city or a birth date alone is shared by many people.
    ``phone_regions`` reads numbers written without a country code, in order.
    ``account_id_patterns`` are regexes for account ids the generic windows miss (an IBAN written
    in groups of four); each match is normalised as an account id and looked up.
    ``name_match="corroborated"`` acts on a name only where an e-mail, phone, address or account
    id of the same subject is in the text or its prompt: fewer namesakes of erased people are
    redacted, but a question that only names the subject ("Which city does <name> live in?")
    is let through. The default ``"any"`` blocks it.
    """

    mode: str = "redact"
    entity_types: frozenset[EntityType] = DEFAULT_ENTITY_TYPES
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    redaction_token: str = "[REDACTED]"
    refusal_message: str = DEFAULT_REFUSAL_MESSAGE
    phone_regions: tuple[str, ...] = field(default=("GB", "US"))
    name_match: str = "any"
    account_id_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"guard mode must be one of {MODES}, got {self.mode!r}")
        if self.name_match not in NAME_MATCHES:
            raise ValueError(f"name_match must be one of {NAME_MATCHES}, got {self.name_match!r}")
        if isinstance(self.entity_types, (str, EntityType)):
            raise ValueError("entity_types must be a collection of entity types, not one string")
        kinds = _entity_types(self.entity_types)
        if not kinds:
            raise ValueError("a guard policy needs at least one entity type")
        if kinds <= QUASI_IDENTIFIERS:
            raise ValueError(
                "quasi-identifiers (LOCATION, DATE_OF_BIRTH) are acted on only beside a name or "
                "direct identifier: add PERSON or a direct identifier type"
            )
        object.__setattr__(self, "entity_types", kinds)
        for name in ("system_prompt", "redaction_token", "refusal_message"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
        regions = tuple(self.phone_regions)
        if not regions:
            raise ValueError("phone_regions needs at least one ISO 3166 alpha-2 region")
        for region in regions:
            if not isinstance(region, str) or len(region) != 2 or not region.isalpha():
                raise ValueError(f"phone region must be an ISO 3166 alpha-2 code, got {region!r}")
        object.__setattr__(self, "phone_regions", tuple(region.upper() for region in regions))
        if isinstance(self.account_id_patterns, str):
            raise ValueError("account_id_patterns must be a sequence of regexes, not one string")
        patterns = tuple(self.account_id_patterns)
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                raise ValueError(f"account id pattern {pattern!r} is not a valid regex: {error}") from None
        object.__setattr__(self, "account_id_patterns", patterns)

    def as_dict(self) -> dict[str, Any]:
        """Return the policy as JSON-ready data (entity types sorted, so exports are stable)."""
        return {
            "mode": self.mode,
            "entity_types": sorted(kind.value for kind in self.entity_types),
            "system_prompt": self.system_prompt,
            "redaction_token": self.redaction_token,
            "refusal_message": self.refusal_message,
            "phone_regions": list(self.phone_regions),
            "name_match": self.name_match,
            "account_id_patterns": list(self.account_id_patterns),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GuardPolicy":
        """Return the policy that ``as_dict`` wrote; raise ``ValueError`` on unknown or bad keys."""
        if not isinstance(data, Mapping):
            raise ValueError(f"policy must be a JSON object, got {type(data).__name__}")
        known = {
            "mode",
            "entity_types",
            "system_prompt",
            "redaction_token",
            "refusal_message",
            "phone_regions",
            "name_match",
            "account_id_patterns",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"policy has unknown keys {sorted(unknown)}; known: {sorted(known)}")
        if "mode" not in data or "entity_types" not in data:
            raise ValueError("policy needs at least 'mode' and 'entity_types'")
        entity_types = data["entity_types"]
        if not isinstance(entity_types, list):
            raise ValueError("policy 'entity_types' must be a list of entity type names")
        arguments = dict(data)
        arguments["entity_types"] = _entity_types(entity_types)
        if "account_id_patterns" in arguments:
            if not isinstance(arguments["account_id_patterns"], list):
                raise ValueError("policy 'account_id_patterns' must be a list of regexes")
            arguments["account_id_patterns"] = tuple(arguments["account_id_patterns"])
        if "phone_regions" in arguments:
            if not isinstance(arguments["phone_regions"], list):
                raise ValueError("policy 'phone_regions' must be a list of region codes")
            arguments["phone_regions"] = tuple(arguments["phone_regions"])
        return cls(**arguments)
