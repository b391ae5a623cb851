"""Apply a deployment's suppression rules to prompts and generated text: allow, redact or refuse.

The output filter stops a model from revealing an erased subject's data; the input filter stops
a prompt from naming the subject or re-introducing the deleted data ("ununlearning": a model
given the record back in its prompt can answer as if it had never forgotten it); the system
prompt asks the model not to disclose personal data. None of this changes the parameters: the
model still holds what it learnt, and a prompt the filters do not recognise can still draw it
out. Decisions and logs name entity types, spans and subject references, never the values.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from ..pii.entities import QUASI_IDENTIFIERS, EntityType
from ..pii.hashing import KeyedHasher
from .detect import Detection, Detector
from .digest import KeyedDigest
from .policy import GuardPolicy
from .rules import RuleSet, load_rules

__all__ = [
    "ACTIONS",
    "GuardMatch",
    "GuardDecision",
    "GuardedGeneration",
    "Guard",
    "guard_from_exported_rules",
    "check_text_against_exported_rules",
]

logger = logging.getLogger(__name__)

ACTIONS = ("allow", "redact", "refuse")
_DIRECT = frozenset(EntityType) - QUASI_IDENTIFIERS
_SEVERITY = {action: rank for rank, action in enumerate(ACTIONS)}


class GuardMatch(NamedTuple):
    """A matched span: its entity type, ``(start, end)`` in the checked text, and the subject."""

    entity_type: str
    span: tuple[int, int]
    subject_ref: str


@dataclass(frozen=True)
class GuardDecision:
    """What the guard did with one text: the action, the text to pass on, and why.

    ``matches`` spans refer to the text that was checked, not to ``text`` after redaction.
    ``reasons`` name entity types, spans and subject references only, so they can be logged.
    """

    action: str
    text: str
    matches: tuple[GuardMatch, ...] = ()
    reasons: tuple[str, ...] = ()
    direction: str = "output"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"guard action must be one of {ACTIONS}, got {self.action!r}")
        if self.direction not in ("input", "output"):
            raise ValueError(f"direction must be 'input' or 'output', got {self.direction!r}")

    @property
    def acted(self) -> bool:
        """Return whether the guard changed or refused the text."""
        return self.action != "allow"

    @property
    def subjects(self) -> frozenset[str]:
        """Return the references of the subjects the text matched."""
        return frozenset(match.subject_ref for match in self.matches)

    def as_dict(self) -> dict[str, Any]:
        """Return the decision without the text, for an API response or an audit record."""
        return {
            "direction": self.direction,
            "action": self.action,
            "matches": [
                {
                    "type": m.entity_type,
                    "start": m.span[0],
                    "end": m.span[1],
                    "subject": m.subject_ref,
                }
                for m in self.matches
            ],
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class GuardedGeneration:
    """A prompt run through the input filter, the model and the output filter."""

    text: str
    action: str
    input: GuardDecision
    output: GuardDecision | None

    @property
    def acted(self) -> bool:
        """Return whether either filter changed or refused something."""
        return self.action != "allow"


def _redact(text: str, spans: list[tuple[int, int]], token: str) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, position = [], 0
    for start, end in merged:
        pieces.append(text[position:start])
        pieces.append(token)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


class Guard:
    """Check texts against one rule set under one policy; build once, call per request.

    Building turns the rules into a hash table (for 100k subjects about a second); a check then
    costs the same whatever the number of rules.
    """

    def __init__(self, rule_set: RuleSet, hasher: KeyedHasher, policy: GuardPolicy | None = None) -> None:
        if not isinstance(rule_set, RuleSet):
            raise ValueError(f"rule_set must be a RuleSet, got {type(rule_set).__name__}")
        if not isinstance(hasher, KeyedHasher):
            raise ValueError(f"hasher must be a KeyedHasher, got {type(hasher).__name__}")
        if hasher.key_id != rule_set.key_id:
            raise ValueError(
                f"the rules were hashed under key {rule_set.key_id!r}, not {hasher.key_id!r}: "
                "they would match nothing"
            )
        self.policy = policy or rule_set.policy
        if not isinstance(self.policy, GuardPolicy):
            raise ValueError(f"policy must be a GuardPolicy, got {type(self.policy).__name__}")
        self._quasi = self.policy.entity_types & QUASI_IDENTIFIERS
        self._corroborate = self.policy.name_match == "corroborated"
        self.rule_set_version = rule_set.version
        self.key_id = rule_set.key_id
        self._table = rule_set.table(self.policy.entity_types)
        #: Which subjects have e-mail, phone or address rules: a name beside an e-mail, phone or
        #: address that is not theirs is a namesake's (see ``find``). References only, no values.
        self._contact_kinds: dict[str, frozenset[EntityType]] = {}
        contact: dict[str, set[EntityType]] = {}
        for rule in rule_set.rules:
            if rule.entity_type in (EntityType.EMAIL, EntityType.PHONE, EntityType.ADDRESS):
                contact.setdefault(rule.subject_ref, set()).add(rule.entity_type)
        self._contact_kinds = {ref: frozenset(kinds) for ref, kinds in contact.items()}
        self._shared = {
            value_hash: frozenset(refs) for value_hash, refs in self._table.items() if len(refs) > 8
        }
        #: The index's keyed hash under this guard's key (for measuring with expected hashes).
        self.digest = KeyedDigest(hasher)
        self._detector = Detector(
            digest=self.digest,
            entity_types=self.policy.entity_types,
            phone_regions=self.policy.phone_regions,
            account_id_patterns=self.policy.account_id_patterns,
        )

    @property
    def rule_count(self) -> int:
        """Return the number of distinct hashes the guard enforces."""
        return len(self._table)

    def find(self, text: str, *, context: str | None = None) -> tuple[GuardMatch, ...]:
        """Return the matches in ``text``; quasi-identifiers count only beside their subject.

        A quasi-identifier (city, date of birth) matches when the same subject is matched by a
        name or direct identifier in ``text`` or in ``context`` (the prompt of a response).
        """
        prepared = self._detector.prepare(text)
        foreign: set[EntityType] = set()
        tails: list[Detection] = []
        spelt: list[Detection] = []
        direct = [
            (d, self._table[d.value_hash])
            for d in self._detector.find(
                prepared, self._table, kinds=_DIRECT, foreign=foreign, tails=tails, spelt=spelt
            )
        ]
        if foreign or tails:
            direct = self._without_namesakes(direct, foreign, tails)
        if spelt:
            direct += self._spelt_with_tails(spelt, tails)
        direct = self._without_other_towns(text, direct)
        context_direct: list[tuple[Detection, tuple[str, ...]]] = []
        if context and (self._quasi or self._corroborate):
            context_direct = [
                (d, self._table[d.value_hash])
                for d in self._detector.find(context, self._table, kinds=_DIRECT)
            ]
        if self._corroborate:
            # A name counts only beside another identifier of the same subject.
            identified = {
                ref
                for d, refs in direct + context_direct
                if d.entity_type is not EntityType.PERSON
                for ref in refs
            }
            direct = [
                (
                    (d, tuple(ref for ref in refs if ref in identified))
                    if d.entity_type is EntityType.PERSON
                    else (d, refs)
                )
                for d, refs in direct
            ]
            context_direct = [
                (d, refs) for d, refs in context_direct if d.entity_type is not EntityType.PERSON
            ]
        present = {ref for _, refs in direct for ref in refs}
        quasi: list[tuple[Detection, tuple[str, ...]]] = []
        if self._quasi:
            # A city or birth date matters only beside its subject: look for them only once a
            # subject is named here or in the prompt, which spares most texts the search.
            present |= {ref for _, refs in context_direct for ref in refs}
            if present:
                quasi = [
                    (d, self._table[d.value_hash])
                    for d in self._detector.find(prepared, self._table, kinds=self._quasi)
                ]
        matches = [
            GuardMatch(d.entity_type.value, (d.start, d.end), ref) for d, refs in direct for ref in refs
        ]
        for d, refs in quasi:
            # A city may be shared by thousands of subjects: test the few present against it.
            members = self._shared.get(d.value_hash, refs)
            matches += [
                GuardMatch(d.entity_type.value, (d.start, d.end), ref) for ref in present if ref in members
            ]
        # A span found both by the guard's forms and by locating's keys is one match.
        matches = sorted(set(matches), key=lambda m: (m.span, m.entity_type, m.subject_ref))
        return tuple(matches)

    def _without_other_towns(self, text: str, direct):
        """Drop address matches that the place after them contradicts.

        A match on a street and house number alone ("115 Main Street") stands for a subject
        only if every place word written after it (if any: the town, a postcode's letters, a
        region) is one of the words that follow the street in the subject's address: "115 Main
        Street, Galway" is another house than the subject's "115 Main Street, Cork", and "65
        O'Connell Street, Dublin 2 D02 KPVT" another than "65 O'Connell Street, Dublin 8 D08 WWFY".
        """
        kept = []
        for d, refs in direct:
            if d.entity_type is EntityType.ADDRESS:
                towns = self._detector.town_hashes(text, d.end)
                if towns is not None:
                    # A town's rule may be shared by thousands of subjects: its frozenset, built once.
                    place_refs = [
                        self._shared.get(value_hash) or self._table.get(value_hash, ())
                        for value_hash in towns
                    ]
                    refs = tuple(ref for ref in refs if all(ref in held for held in place_refs))
                    if not refs:
                        continue
            kept.append((d, refs))
        return kept

    def _spelt_with_tails(self, spelt: list[Detection], tails: list[Detection]):
        """Return the name and phone-ending matches of subjects the text names by both.

        "KATHERINE WHITFIELD … the number ending 0361" for a subject whose request gave only
        katherinewhitfield91@… and a phone ending 0361: each alone is weak (thousands of phones
        end 0361; a name spelt like someone's e-mail may be a namesake's), the pair of the same
        subject is not.
        """
        tail_refs = {ref for d in tails for ref in self._table.get(d.value_hash, ())}
        paired = []
        for d in spelt:
            refs = tuple(ref for ref in self._table.get(d.value_hash, ()) if ref in tail_refs)
            if refs:
                paired.append((d, refs))
        named = {ref for _, refs in paired for ref in refs}
        for d in tails:
            refs = tuple(ref for ref in self._table.get(d.value_hash, ()) if ref in named)
            if refs:
                paired.append((d, refs))
        return paired

    def _without_namesakes(self, direct, foreign: set[EntityType], tails: list[Detection] = ()):
        """Drop name matches of subjects the text contradicts: a namesake's record.

        "Anna Müller, anna.m@other.org" names another Anna Müller when the suppressed Anna
        Müller's rules hold an e-mail and none of the text's identifiers is hers; likewise a
        phone, a postal address, or a phone's last digits ("the number ending 0958") that are
        not hers when her rules hold a phone. A subject whose identifier the text does hold
        keeps every match; one without rules of the kind is never contradicted by it (the
        text's address may be hers).
        """
        confirmed = {ref for d, refs in direct if d.entity_type is not EntityType.PERSON for ref in refs}
        tail_refs = {ref for d in tails for ref in self._table.get(d.value_hash, ())}
        confirmed |= tail_refs
        if tails:
            foreign = foreign | {EntityType.PHONE}
        kept = []
        for d, refs in direct:
            if d.entity_type is EntityType.PERSON:
                refs = tuple(
                    ref
                    for ref in refs
                    if ref in confirmed or not (self._contact_kinds.get(ref, frozenset()) & foreign)
                )
                if not refs:
                    continue
            kept.append((d, refs))
        return kept

    def _decide(self, text: str, matches: tuple[GuardMatch, ...], direction: str) -> GuardDecision:
        if not matches:
            return GuardDecision("allow", text, (), (), direction)
        kinds = {match.entity_type for match in matches}
        what = (
            "names a suppressed subject"
            if kinds == {EntityType.PERSON.value}
            else (
                "re-introduces a suppressed subject's data"
                if direction == "input"
                else "reveals a suppressed subject's data"
            )
        )
        reasons = [f"{direction} {what} ({len(matches)} match{'es' if len(matches) > 1 else ''})"]
        reasons += [
            f"{m.entity_type} at {m.span[0]}-{m.span[1]} matches a rule of subject {m.subject_ref}"
            for m in matches
        ]
        if self.policy.mode == "refuse":
            action, out = "refuse", self.policy.refusal_message
        else:
            action = "redact"
            out = _redact(text, [m.span for m in matches], self.policy.redaction_token)
        logger.info(
            "guard.acted",
            extra={
                "direction": direction,
                "action": action,
                "entity_types": dict(Counter(m.entity_type for m in matches)),
                "subjects": sorted({m.subject_ref for m in matches}),
                "rule_set_version": self.rule_set_version,
            },
        )
        return GuardDecision(action, out, matches, tuple(reasons), direction)

    def check_output(self, text: str, *, prompt: str | None = None) -> GuardDecision:
        """Return what to do with generated ``text``: allow it, redact the matches, or refuse.

        ``prompt`` lets a city or birth date in the answer count when the subject was named only
        in the question ("Which city does <name> live in?" → "Leeds").
        """
        return self._decide(text, self.find(text, context=prompt), "output")

    def check_input(self, prompt: str) -> GuardDecision:
        """Return what to do with a prompt that names a suppressed subject or re-introduces data.

        Redacting a prompt keeps the deleted values out of the model's context, so it cannot
        use them to reconstruct what was unlearnt; refusing does not call the model at all.
        """
        return self._decide(prompt, self.find(prompt), "input")

    def wrap_prompt(self, prompt: str) -> str:
        """Return ``prompt`` with the policy's system prompt in front of it."""
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
        return f"{self.policy.system_prompt}\n\n{prompt}"

    def run(self, prompt: str, *, generate: Callable[[str], str]) -> GuardedGeneration:
        """Return ``generate``'s answer to ``prompt`` with both filters and the system prompt.

        A refused prompt never reaches the model. The output is checked with the original
        prompt as context, so quasi-identifiers of a subject named in the question are caught.
        """
        checked_input = self.check_input(prompt)
        if checked_input.action == "refuse":
            return GuardedGeneration(checked_input.text, "refuse", checked_input, None)
        generated = generate(self.wrap_prompt(checked_input.text))
        checked_output = self.check_output(generated, prompt=prompt)
        action = max(checked_input.action, checked_output.action, key=_SEVERITY.__getitem__)
        return GuardedGeneration(checked_output.text, action, checked_input, checked_output)


@lru_cache(maxsize=4)
def _cached_guard(rules_json: str | bytes, key: bytes) -> Guard:
    return _build_guard(rules_json, key)


def _build_guard(rules_json: str | bytes | Mapping[str, Any], key: bytes) -> Guard:
    unchecked = load_rules(rules_json)
    hasher = KeyedHasher(key=key, key_id=unchecked.key_id)
    rule_set = load_rules(rules_json, hasher=hasher)
    return Guard(rule_set, hasher)


def guard_from_exported_rules(rules_json: str | bytes | Mapping[str, Any], key: bytes) -> Guard:
    """Return a guard for an exported rule set (see ``rules.export_rules``) and its key.

    Raise ``ValueError`` if the export is malformed or ``key`` is not the key it was hashed
    under. JSON text is parsed once and cached, so calling this per request is cheap.
    """
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError(f"key must be bytes, got {type(key).__name__}")
    if isinstance(rules_json, (str, bytes)):
        return _cached_guard(rules_json, bytes(key))
    return _build_guard(rules_json, bytes(key))


def check_text_against_exported_rules(
    text: str,
    rules_json: str | bytes | Mapping[str, Any],
    key: bytes,
    *,
    direction: str = "output",
    prompt: str | None = None,
) -> GuardDecision:
    """Return the guard's decision on ``text`` under exported rules, for other serving stacks.

    ``direction`` is ``"output"`` for generated text (``prompt`` optional, as in
    ``Guard.check_output``) or ``"input"`` for a prompt.
    """
    guard = guard_from_exported_rules(rules_json, key)
    if direction == "output":
        return guard.check_output(text, prompt=prompt)
    if direction == "input":
        return guard.check_input(text)
    raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
