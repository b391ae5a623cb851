"""Locate a request's person in the training data by looking their keyed hashes up in the PII index.

No record is scanned again and no identifier is decrypted: the request's identifiers were
normalised and hashed at intake (``SubjectIdentifierHash``) with the key the index was built
under, so locating is a handful of indexed lookups, whatever the size of the data sets.

Candidates are ranked by evidence, in three tiers:

* ``strong``: a direct identifier of the person (e-mail, phone, account id, postal address) is
  in the record. More kinds of direct identifier, and the person's name beside them, score
  higher.
* ``strong`` as well, *linked*: the person's name with a direct identifier the request did not
  give but the person's own strong records hold (the phone number beside their e-mail address in
  two or more of them), where at least half of all records holding that identifier are the
  person's strong records; e-mails, phones and account ids only, never addresses. A request gives what the person remembered; their records hold what they
  wrote at the time. The reason names the kind and how many strong records vouch for it, and a
  value shared widely (a shop's switchboard) links nothing.
* ``name``: only the person's name is, exactly (any order, "Smith, John") or as a variant
  (initials, a nickname, a missing middle name). Below every strong candidate, because two
  people share a name often; a record that also holds the date of birth or place seen in the
  person's strong records scores higher.
* ``quasi``: neither is, but the record holds a date of birth found in the person's strong
  records, with a place from them (higher) or alone (lower): it may describe them without
  naming them. The reason says which.

A search covers the newest indexed version of each data set in the request's scope; versions
left out (still indexing, built under another key) are listed with the reason in the search
coverage, which the audit report shows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from compliance import roles
from compliance.audit import audit_event_record
from compliance.celery import app as celery_app
from compliance.queues import TaskName
from requests_app import services
from requests_app.identifiers import pii_hasher
from requests_app.models import ErasureRequest, RequestStatus, SubjectIdentifierHash
from unlearning_jobs.engine.pii.entities import DIRECT_IDENTIFIERS, EntityType
from unlearning_jobs.engine.pii.linking import candidates as linking_candidates
from unlearning_jobs.engine.pii.linking import linked_values as values_linked
from unlearning_jobs.engine.pii.match_keys import MATCH_KEY_DERIVATION, SEARCHED_FORMS
from unlearning_jobs.models import (
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
    SearchCoverage,
    SearchCoverageStatus,
)

logger = logging.getLogger(__name__)

DIRECT_TYPES = frozenset(kind.value for kind in DIRECT_IDENTIFIERS)
PERSON = EntityType.PERSON.value
DATE_OF_BIRTH = EntityType.DATE_OF_BIRTH.value
LOCATION = EntityType.LOCATION.value

# Scores: every strong candidate ranks above every name candidate, which ranks above quasi.
STRONG_BASE = 0.80
STRONG_PER_EXTRA_KIND = 0.05  # per further kind of direct identifier, at most two counted
STRONG_WITH_NAME = {"exact": 0.10, "variant": 0.05}
NAME_SCORE = {"exact": 0.50, "variant": 0.35}
NAME_WITH_QUASI = 0.10
#: A name with an identifier linked through the person's strong records (strong tier, below a direct match).
LINKED_SCORE = {"exact": 0.80, "variant": 0.78}
#: The kinds that can link: values that belong to one person. Not addresses: a household or an
#: office shares one, and the index keys them coarsely (a street without its number) as well.
LINKED_TYPES = frozenset({EntityType.EMAIL.value, EntityType.PHONE.value, EntityType.ACCOUNT_ID.value})
QUASI_SCORE = 0.25
QUASI_DOB_ONLY_SCORE = 0.15
TIER_RANK = {MatchTier.STRONG: 0, MatchTier.NAME: 1, MatchTier.QUASI: 2}

ENTITY_LABELS = {
    "EMAIL": "e-mail address",
    "PHONE": "phone number",
    "ACCOUNT_ID": "account id",
    "ADDRESS": "postal address",
    "PERSON": "name",
    "DATE_OF_BIRTH": "date of birth",
    "LOCATION": "place",
}


class LocateError(ValueError):
    """The search cannot be run as asked (wrong state, no permission)."""


# --- what is searched -----------------------------------------------------------------------------


@dataclass
class SubjectDigests:
    """The request's keyed hashes usable against an index built under ``key_id``."""

    key_id: str
    by_digest: dict[str, tuple[str, bool]] = field(default_factory=dict)  # digest → (type, variant)
    other_key: int = 0

    @property
    def person_digests(self) -> list[str]:
        return [digest for digest, (kind, _) in self.by_digest.items() if kind == PERSON]

    def counts(self) -> dict[str, dict]:
        """Return, per identifier kind, the hashes searched (given and variants) and the forms covered."""
        counts: dict[str, dict] = {}
        for kind, variant in self.by_digest.values():
            entry = counts.setdefault(
                kind, {"given": 0, "variants": 0, "forms": list(SEARCHED_FORMS.get(kind, ()))}
            )
            entry["variants" if variant else "given"] += 1
        return dict(sorted(counts.items()))


def subject_digests(erasure_request: ErasureRequest) -> SubjectDigests:
    """Return the request's identifier hashes under the server's current key."""

    key_id = pii_hasher().key_id
    digests = SubjectDigests(key_id=key_id)
    rows = SubjectIdentifierHash.objects.filter(erasure_request=erasure_request).values_list(
        "entity_type", "digest", "key_id", "is_variant"
    )
    for kind, digest, row_key, variant in rows:
        if row_key != key_id:
            digests.other_key += 1
            continue
        digests.by_digest[digest] = (kind, variant)
    return digests


def match_keys_derivation(configuration: dict | None) -> int | None:
    """Return the match-key rules' generation an index was built with (None: built without keys).

    Indexes built before the generation was recorded hold the first one's keys.
    """
    keys = ((configuration or {}).get("scan") or {}).get("match_keys")
    return None if not keys else int(keys.get("derivation", 1))


def _configuration_summary(configuration: dict | None) -> dict:
    configuration = configuration or {}
    canonical = json.dumps(configuration, sort_keys=True, separators=(",", ":"), default=str)
    model = configuration.get("spacy_model", {})
    derivation = match_keys_derivation(configuration)
    return {
        "match_keys_derivation": derivation,
        # Indexed with earlier rules: the records' forms those rules missed have no key to match.
        "match_keys_outdated": derivation is not None and derivation < MATCH_KEY_DERIVATION,
        "sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        "spacy_model": model.get("name"),
        "spacy_model_version": model.get("version"),
        "recognisers": configuration.get("recognisers", []),
        "score_threshold": configuration.get("score_threshold"),
        "presidio_analyzer": configuration.get("versions", {}).get("presidio_analyzer"),
    }


def searchable_versions(
    erasure_request: ErasureRequest, *, key_id: str
) -> tuple[list[DatasetVersion], list[dict]]:
    """Return the versions to search (newest indexed of each data set in scope) and those left out, with why."""
    if erasure_request.scope_all:
        datasets = list(Dataset.objects.order_by("name"))
    else:
        datasets = list(Dataset.objects.filter(pk__in=erasure_request.scope_dataset_ids).order_by("name"))
    skipped: list[dict] = []
    if not erasure_request.scope_all:
        missing = sorted(set(erasure_request.scope_dataset_ids) - {d.pk for d in datasets})
        skipped.extend(
            {"dataset_id": pk, "dataset": None, "version": None, "reason": "No data set has this id."}
            for pk in missing
        )
    by_dataset: dict[int, list[DatasetVersion]] = defaultdict(list)
    # A derived version's removal list can be long and is not needed here.
    for version in (
        DatasetVersion.objects.filter(dataset__in=datasets)
        .select_related("dataset")
        .defer("removed_manifest")
        .order_by("dataset_id", "-number")
    ):
        by_dataset[version.dataset_id].append(version)
    chosen: list[DatasetVersion] = []
    for dataset in datasets:
        versions = by_dataset.get(dataset.pk, [])
        indexed = [
            v for v in versions if v.status == DatasetVersionStatus.INDEXED and v.hash_key_id == key_id
        ]
        newest_indexed = indexed[0] if indexed else None
        for version in versions:
            if newest_indexed is not None and version.number <= newest_indexed.number:
                break
            if version.status == DatasetVersionStatus.INDEXED:
                reason = (
                    f"Indexed under hash key {version.hash_key_id}, not the current key {key_id}: "
                    "register it again to search it."
                )
            else:
                reason = f"Not searchable yet: {version.get_status_display().lower()}."
            skipped.append(
                {
                    "dataset_id": dataset.pk,
                    "dataset": dataset.name,
                    "version": version.number,
                    "reason": reason,
                }
            )
        if newest_indexed is not None:
            chosen.append(newest_indexed)
        elif not versions:
            skipped.append(
                {
                    "dataset_id": dataset.pk,
                    "dataset": dataset.name,
                    "version": None,
                    "reason": "The data set has no version.",
                }
            )
    return chosen, skipped


def request_has_searchable_data(erasure_request: ErasureRequest) -> bool:
    """Return whether any data set in the request's scope has an indexed version."""
    versions = DatasetVersion.objects.filter(status=DatasetVersionStatus.INDEXED)
    if not erasure_request.scope_all:
        versions = versions.filter(dataset_id__in=erasure_request.scope_dataset_ids)
    return versions.exists()


# --- the search -------------------------------------------------------------------------------------


@dataclass
class Candidate:
    record_pk: int
    version_id: int
    tier: str
    score: float
    evidence: dict


@dataclass
class LocateResult:
    candidates: list[Candidate]
    versions: list[DatasetVersion]
    skipped: list[dict]
    digests: SubjectDigests
    duration_ms: float


def _name_quality(matches: list[dict]) -> str | None:
    kinds = {match["via"] for match in matches if match["entity_type"] == PERSON}
    if "exact" in kinds:
        return "exact"
    return "variant" if kinds else None


def _reason(*, tier: str, direct: list[str], name: str | None, quasi: dict | None) -> str:
    if tier == MatchTier.STRONG and direct:
        kinds = " and ".join(ENTITY_LABELS[kind] for kind in direct)
        text = f"The person's {kinds} {'is' if len(direct) == 1 else 'are'} in the record"
        if name == "exact":
            text += ", with their name"
        elif name == "variant":
            text += ", with a variant of their name"
        return text + "."
    if tier == MatchTier.STRONG and not direct:
        linked = quasi or {}
        kinds = " and ".join(ENTITY_LABELS[kind] for kind in linked.get("entity_types", []))
        return (
            f"The person's {'name' if name == 'exact' else 'name (a variant)'} is in the record with a "
            f"{kinds} the request does not give, which {len(linked.get('shared_with', ()))} of the "
            "person's strong records hold."
        )
    if tier == MatchTier.NAME:
        text = (
            "The person's name is in the record (no e-mail, phone, account id or address of theirs)"
            if name == "exact"
            else "A variant of the person's name (initial, nickname or another order) is in the record, "
            "and no direct identifier"
        )
        if quasi:
            kinds = " and ".join(ENTITY_LABELS[kind] for kind in quasi["entity_types"])
            text += f"; its {kinds} also occur in the person's strong records"
        return text + "."
    if LOCATION in quasi["entity_types"]:
        return (
            f"No identifier of the person, but a date of birth and a place that both occur in "
            f"the person's strong records ({len(quasi['shared_with'])}): it may describe them."
        )
    return (
        f"No identifier of the person, but the date of birth found in the person's strong records "
        f"({len(quasi['shared_with'])}): it may describe them."
    )


def locate_compute(*, erasure_request: ErasureRequest) -> LocateResult:
    """Search the index for the request's person; return ranked candidates without writing anything."""
    started = time.perf_counter()
    digests = subject_digests(erasure_request)
    versions, skipped = searchable_versions(erasure_request, key_id=digests.key_id)
    version_ids = [version.pk for version in versions]
    if not version_ids or not digests.by_digest:
        return LocateResult([], versions, skipped, digests, (time.perf_counter() - started) * 1000)

    # 1. Every finding whose hash (or, for names, token-sorted hash) is one of the person's.
    lookup = Q(value_hash__in=list(digests.by_digest))
    if digests.person_digests:
        lookup |= Q(sorted_hash__in=digests.person_digests, entity_type=PERSON)
    hits = PiiFinding.objects.filter(lookup, version_id__in=version_ids).values_list(
        "record_id", "version_id", "entity_type", "start", "end", "value_hash", "sorted_hash"
    )
    per_record: dict[int, list[dict]] = defaultdict(list)
    record_version: dict[int, int] = {}
    for record_pk, version_id, kind, start, end, value_hash, sorted_hash in hits:
        if value_hash in digests.by_digest and digests.by_digest[value_hash][0] == kind:
            variant = digests.by_digest[value_hash][1]
            via = "variant" if variant else "exact"
        elif kind == PERSON and sorted_hash in digests.by_digest:
            via = "variant"  # the same name tokens in another order
        else:
            continue
        per_record[record_pk].append({"entity_type": kind, "via": via, "span": [start, end]})
        record_version[record_pk] = version_id

    strong: dict[int, tuple[list[str], str | None]] = {}
    named: dict[int, str] = {}
    for record_pk, matches in per_record.items():
        direct = sorted({m["entity_type"] for m in matches if m["entity_type"] in DIRECT_TYPES})
        name = _name_quality(matches)
        if direct:
            strong[record_pk] = (direct, name)
        elif name:
            named[record_pk] = name

    # 2. Quasi-identifiers seen in the person's strong records: dates of birth and places.
    # One query reads them for the strong records and, to weigh the name-only ones, theirs too.
    quasi_values: dict[str, dict[str, set[int]]] = {
        DATE_OF_BIRTH: defaultdict(set),
        LOCATION: defaultdict(set),
    }
    # The same query reads the direct identifiers the request did not give: in the strong records
    # they may be the person's own (3), in the name-only ones they would link them.
    named_quasi: list[tuple] = []
    linked_values: dict[tuple[str, str], set[int]] = defaultdict(set)
    named_direct: list[tuple] = []
    if strong:
        rows = PiiFinding.objects.filter(
            record_id__in=[*strong, *named], entity_type__in=[DATE_OF_BIRTH, LOCATION, *DIRECT_TYPES]
        ).values_list("record_id", "entity_type", "value_hash", "start", "end")
        for row in rows:
            record_pk, kind, value_hash = row[0], row[1], row[2]
            if kind in DIRECT_TYPES:
                if value_hash in digests.by_digest or kind not in LINKED_TYPES:
                    continue  # the request's own identifier: counted already
                if record_pk in strong:
                    linked_values[(kind, value_hash)].add(record_pk)
                else:
                    named_direct.append(row)
            elif record_pk in strong:
                quasi_values[kind][value_hash].add(record_pk)
            else:
                named_quasi.append(row)
    quasi_support = _quasi_support(rows=named_quasi, quasi_values=quasi_values)
    # 3. Identifiers linked through the strong records: a name beside one of them is strong evidence.
    linked_support = (
        _linked_support(rows=named_direct, linked_values=linked_values, version_ids=version_ids)
        if settings.LETHE_LOCATE_LINKED_IDENTIFIERS
        else {}
    )
    quasi_only = _quasi_only_records(
        version_ids=version_ids, quasi_values=quasi_values, exclude=set(per_record)
    )

    candidates: list[Candidate] = []
    for record_pk, (direct, name) in strong.items():
        score = STRONG_BASE + STRONG_PER_EXTRA_KIND * min(len(direct) - 1, 2)
        score += STRONG_WITH_NAME.get(name, 0.0) if name else 0.0
        evidence = {
            "matched": per_record[record_pk],
            "direct": direct,
            "name": name,
            "reason": _reason(tier=MatchTier.STRONG, direct=direct, name=name, quasi=None),
        }
        candidates.append(
            Candidate(
                record_pk, record_version[record_pk], MatchTier.STRONG, round(min(score, 1.0), 4), evidence
            )
        )
    for record_pk, name in named.items():
        linked = linked_support.get(record_pk)
        if linked:
            evidence = {
                "matched": per_record[record_pk] + linked.pop("matched"),
                "direct": [],
                "name": name,
                "linked": linked,
                "reason": _reason(tier=MatchTier.STRONG, direct=[], name=name, quasi=linked),
            }
            candidates.append(
                Candidate(
                    record_pk, record_version[record_pk], MatchTier.STRONG, LINKED_SCORE[name], evidence
                )
            )
            continue
        support = quasi_support.get(record_pk)
        score = NAME_SCORE[name] + (NAME_WITH_QUASI if support else 0.0)
        evidence = {
            "matched": per_record[record_pk],
            "direct": [],
            "name": name,
            "reason": _reason(tier=MatchTier.NAME, direct=[], name=name, quasi=support),
        }
        if support:
            evidence["quasi"] = support
        candidates.append(
            Candidate(record_pk, record_version[record_pk], MatchTier.NAME, round(score, 4), evidence)
        )
    for record_pk, (version_id, support) in quasi_only.items():
        evidence = {
            "matched": support.pop("matched"),
            "direct": [],
            "name": None,
            "quasi": support,
            "reason": _reason(tier=MatchTier.QUASI, direct=[], name=None, quasi=support),
        }
        score = QUASI_SCORE if LOCATION in support["entity_types"] else QUASI_DOB_ONLY_SCORE
        candidates.append(Candidate(record_pk, version_id, MatchTier.QUASI, score, evidence))
    _shared_with_ids(candidates)
    candidates.sort(key=lambda c: (-c.score, TIER_RANK[c.tier], c.version_id, c.record_pk))
    return LocateResult(candidates, versions, skipped, digests, (time.perf_counter() - started) * 1000)


def _quasi_support(*, rows: list[tuple], quasi_values: dict) -> dict[int, dict]:
    """Return, for name-only records, which quasi-identifiers they share with the strong records.

    ``rows`` are the name-only records' date-of-birth and place findings:
    ``(record, entity type, value hash, start, end)``.
    """
    support: dict[int, dict] = {}
    for record_pk, kind, value_hash, start, end in rows:
        if value_hash not in quasi_values[kind]:
            continue
        entry = support.setdefault(record_pk, {"entity_types": [], "shared_with": set(), "spans": []})
        if kind not in entry["entity_types"]:
            entry["entity_types"].append(kind)
        entry["shared_with"].update(quasi_values[kind][value_hash])
        entry["spans"].append({"entity_type": kind, "span": [start, end]})
    for entry in support.values():
        entry["entity_types"].sort()
    return support


def _linked_support(
    *,
    rows: list[tuple],
    linked_values: dict[tuple[str, str], set[int]],
    version_ids: list[int],
) -> dict[int, dict]:
    """Return, for name-only records, the direct identifiers they share with the person's strong records.

    ``rows`` are the name-only records' direct-identifier findings that are not the request's:
    ``(record, entity type, value hash, start, end)``. A value links by the rule of
    ``engine.pii.linking`` (enough of the person's strong records hold it, and they are at least
    half of every record holding it in the versions searched): a number shared by many people
    (a switchboard) links nothing, and neither does a namesake's own number that one of the
    person's records happens to quote.
    """
    named_values = {(kind, value_hash) for _, kind, value_hash, _, _ in rows}
    wanted = linking_candidates({key: linked_values[key] for key in named_values if key in linked_values})
    if not wanted:
        return {}
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for record_pk, kind, value_hash in PiiFinding.objects.filter(
        value_hash__in={value_hash for _, value_hash in wanted}, version_id__in=version_ids
    ).values_list("record_id", "entity_type", "value_hash"):
        if (kind, value_hash) in wanted:
            holders[(kind, value_hash)].add(record_pk)
    linking = values_linked({key: linked_values[key] for key in wanted}, holders)
    support: dict[int, dict] = {}
    for record_pk, kind, value_hash, start, end in rows:
        if (kind, value_hash) not in linking:
            continue
        entry = support.setdefault(record_pk, {"entity_types": [], "shared_with": set(), "matched": []})
        if kind not in entry["entity_types"]:
            entry["entity_types"].append(kind)
        entry["shared_with"].update(linked_values[(kind, value_hash)])
        entry["matched"].append({"entity_type": kind, "via": "linked", "span": [start, end]})
    for entry in support.values():
        entry["entity_types"].sort()
    return support


def _quasi_only_records(
    *, version_ids: list[int], quasi_values: dict, exclude: set[int]
) -> dict[int, tuple[int, dict]]:
    """Return records with no identifier of the person but a date of birth from their strong records.

    With a place from those records as well the evidence is stronger (``QUASI_SCORE``); a date of
    birth alone still singles out few people and is offered lower (``QUASI_DOB_ONLY_SCORE``).
    Dates are looked up first: they are rare, places are not, so the place check runs only on
    the few records a date selected.
    """
    dobs, places = quasi_values[DATE_OF_BIRTH], quasi_values[LOCATION]
    if not dobs:
        return {}
    dob_rows = PiiFinding.objects.filter(
        value_hash__in=list(dobs), entity_type=DATE_OF_BIRTH, version_id__in=version_ids
    ).values_list("record_id", "version_id", "value_hash", "start", "end")
    by_record: dict[int, dict] = {}
    for record_pk, version_id, value_hash, start, end in dob_rows:
        if record_pk in exclude:
            continue
        entry = by_record.setdefault(
            record_pk,
            {"version_id": version_id, "shared_with": set(), "matched": [], "entity_types": [DATE_OF_BIRTH]},
        )
        entry["shared_with"].update(dobs[value_hash])
        entry["matched"].append({"entity_type": DATE_OF_BIRTH, "via": "quasi", "span": [start, end]})
    if by_record and places:
        place_rows = PiiFinding.objects.filter(
            record_id__in=list(by_record), entity_type=LOCATION, value_hash__in=list(places)
        ).values_list("record_id", "value_hash", "start", "end")
        for record_pk, value_hash, start, end in place_rows:
            entry = by_record[record_pk]
            entry["shared_with"].update(places[value_hash])
            entry["matched"].append({"entity_type": LOCATION, "via": "quasi", "span": [start, end]})
            if LOCATION not in entry["entity_types"]:
                entry["entity_types"].append(LOCATION)
    return {record_pk: (entry.pop("version_id"), entry) for record_pk, entry in by_record.items()}


def _shared_with_ids(candidates: list[Candidate]) -> None:
    """Replace the database keys of supporting strong records with their record ids (for review)."""
    keys: set[int] = set()
    for candidate in candidates:
        for part in ("quasi", "linked"):
            if candidate.evidence.get(part):
                keys.update(candidate.evidence[part]["shared_with"])
    if not keys:
        return
    ids = dict(DatasetRecord.objects.filter(pk__in=keys).values_list("pk", "record_id"))
    for candidate in candidates:
        for part in ("quasi", "linked"):
            if candidate.evidence.get(part):
                candidate.evidence[part]["shared_with"] = sorted(
                    ids[pk] for pk in candidate.evidence[part]["shared_with"]
                )


# --- storing a search ---------------------------------------------------------------------------------


def _coverage_versions(versions: list[DatasetVersion]) -> list[dict]:
    from django.db.models import Sum

    findings = dict(
        IndexChunk.objects.filter(version__in=versions, status=IndexChunkStatus.DONE)
        .values("version_id")
        .annotate(total=Sum("findings"))
        .values_list("version_id", "total")
    )
    return [
        {
            "dataset_id": version.dataset_id,
            "dataset": version.dataset.name,
            "version_id": version.pk,
            "version": version.number,
            "records_total": version.record_count,
            "records_indexed": version.record_count,
            "findings": findings.get(version.pk, 0),
            "manifest_sha256": version.manifest_sha256,
            "index_key_id": version.hash_key_id,
            "indexed_at": version.indexed_at.isoformat() if version.indexed_at else None,
            "index_configuration": _configuration_summary(version.index_configuration),
        }
        for version in versions
    ]


#: From this many candidates on, PostgreSQL gets them by COPY: Django's bulk insert sends arrays
#: whose JSON elements psycopg escapes in Python, which cost more than the whole search for a
#: person found in a couple of hundred records.
COPY_FROM = 50


def _candidates_insert(
    *, erasure_request: ErasureRequest, coverage: SearchCoverage, candidates: list[Candidate]
) -> None:
    if connection.vendor != "postgresql" or len(candidates) < COPY_FROM:
        MatchCandidate.objects.bulk_create(
            [
                MatchCandidate(
                    erasure_request=erasure_request,
                    record_id=c.record_pk,
                    version_id=c.version_id,
                    coverage=coverage,
                    tier=c.tier,
                    score=c.score,
                    evidence=c.evidence,
                )
                for c in candidates
            ],
            batch_size=2000,
        )
        return
    now = timezone.now()
    columns = (
        "erasure_request_id",
        "record_id",
        "version_id",
        "coverage_id",
        "tier",
        "score",
        "evidence",
        "status",
        "note",
        "created_at",
    )
    statement = f"COPY {MatchCandidate._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.connection.cursor().copy(statement) as copy:
        for c in candidates:
            copy.write_row(
                (
                    erasure_request.pk,
                    c.record_pk,
                    c.version_id,
                    coverage.pk,
                    c.tier,
                    c.score,
                    json.dumps(c.evidence, separators=(",", ":")),
                    CandidateStatus.PENDING,
                    "",
                    now,
                )
            )


def locate_request(
    *, erasure_request: ErasureRequest, actor, coverage: SearchCoverage | None = None
) -> SearchCoverage:
    """Search the index for the request's person and store the candidates and the search's coverage.

    Pending candidates of an earlier search are replaced; decided ones (confirmed or rejected)
    are kept as decided. Writes one audit event with the counts. Does not change the request's
    status: ``locate_run_execute`` hands the result to review.
    """
    if not roles.actor_may(actor, roles.MANAGE_REQUESTS, system=True):
        raise LocateError(f"{roles.actor_name(actor)} may not search for a person's records.")
    result = locate_compute(erasure_request=erasure_request)
    now = timezone.now()
    coverage_versions = _coverage_versions(result.versions)
    with transaction.atomic():
        if coverage is None:
            coverage = SearchCoverage(erasure_request=erasure_request, requested_by=actor, started_at=now)
        decided = set(
            MatchCandidate.objects.filter(erasure_request=erasure_request)
            .exclude(status=CandidateStatus.PENDING)
            .values_list("record_id", flat=True)
        )
        counts = {tier.value: 0 for tier in MatchTier}
        for candidate in result.candidates:
            counts[candidate.tier] += 1
        counts["kept_decided"] = sum(1 for c in result.candidates if c.record_pk in decided)
        coverage.status = SearchCoverageStatus.DONE
        coverage.finished_at = timezone.now()
        coverage.hash_key_id = result.digests.key_id
        coverage.identifier_counts = {
            **result.digests.counts(),
            **({"other_key": result.digests.other_key} if result.digests.other_key else {}),
        }
        coverage.versions = coverage_versions
        coverage.skipped = result.skipped
        coverage.candidate_counts = counts
        coverage.duration_ms = round(result.duration_ms, 2)
        coverage.error = ""
        coverage.save()
        MatchCandidate.objects.filter(
            erasure_request=erasure_request, status=CandidateStatus.PENDING
        ).delete()
        _candidates_insert(
            erasure_request=erasure_request,
            coverage=coverage,
            candidates=[c for c in result.candidates if c.record_pk not in decided],
        )
        audit_event_record(
            actor=actor,
            action="erasure_request.records_located",
            target=erasure_request,
            details={
                "reference": erasure_request.reference,
                "search": coverage.pk,
                "versions_searched": [f"{v['dataset']} v{v['version']}" for v in coverage.versions],
                "versions_skipped": len(result.skipped),
                "candidates": counts,
                "hash_key_id": result.digests.key_id,
                "duration_ms": coverage.duration_ms,
            },
        )
    logger.info(
        "erasure_request.records_located",
        extra={
            "reference": erasure_request.reference,
            "candidates": len(result.candidates),
            "duration_ms": round(result.duration_ms, 2),
        },
    )
    return coverage


# --- running a search as a task -------------------------------------------------------------------------


def locate_run_ensure(*, erasure_request: ErasureRequest, actor=None) -> SearchCoverage:
    """Queue a search for the request unless one is already queued or running; return it.

    The task is sent after the caller's transaction commits.
    """
    active = SearchCoverage.objects.filter(
        erasure_request=erasure_request,
        status__in=[SearchCoverageStatus.QUEUED, SearchCoverageStatus.RUNNING],
    ).first()
    if active is not None:
        return active
    coverage = SearchCoverage.objects.create(erasure_request=erasure_request, requested_by=actor)
    transaction.on_commit(lambda: _locate_enqueue(coverage.pk))
    return coverage


def _locate_enqueue(coverage_id: int) -> None:
    celery_app.send_task(TaskName.LOCATE_REQUEST.value, args=(coverage_id,))


def locate_run_execute(*, coverage_id: int) -> str:
    """Run a queued search, store its result and move the request on to review; return the outcome.

    Claimed with a conditional UPDATE, so a task delivered twice searches once. A failure is
    kept on the search (the request stays in locating; the officer can run it again).
    """

    claimed = SearchCoverage.objects.filter(pk=coverage_id, status=SearchCoverageStatus.QUEUED).update(
        status=SearchCoverageStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "skipped"
    coverage = SearchCoverage.objects.select_related("erasure_request").get(pk=coverage_id)
    erasure_request = coverage.erasure_request
    try:
        coverage = locate_request(erasure_request=erasure_request, actor=None, coverage=coverage)
    except Exception as error:  # kept on the search for the officer; the request waits in locating
        logger.exception("erasure_request.locate_failed", extra={"reference": erasure_request.reference})
        SearchCoverage.objects.filter(pk=coverage_id).update(
            status=SearchCoverageStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(error).__name__}: {error}"[:2000],
        )
        return "failed"
    erasure_request.refresh_from_db()
    if erasure_request.status != RequestStatus.LOCATING:
        return "located"
    try:
        services.erasure_request_submit_for_review(
            erasure_request=erasure_request,
            actor=None,
            details={"search": coverage.pk, "candidates": coverage.candidate_counts},
        )
    except services.TransitionNotAllowed as refusal:
        logger.warning("erasure_request.review_not_started", extra={"reference": erasure_request.reference})
        SearchCoverage.objects.filter(pk=coverage_id).update(
            error=f"Search stored, but review could not start: {' '.join(refusal.messages)}"[:2000]
        )
        return "located"
    return "reviewing"


def erasure_request_locate(*, erasure_request: ErasureRequest, actor, note: str = "") -> ErasureRequest:
    """Start (or run again) the search for the person's records: the request goes to locating.

    From "identity verified" or "review", the request's own start-locating step runs and the
    search is queued with it (see ``locate_on_start``). A request already locating
    whose last search failed gets a new search.
    """

    with transaction.atomic():
        locked = ErasureRequest.objects.select_for_update().get(pk=erasure_request.pk)
        if locked.status == RequestStatus.LOCATING:
            if not roles.actor_may(actor, roles.MANAGE_REQUESTS):
                raise services.ActionNotPermitted(f"{roles.actor_name(actor)} may not start locating.")
            coverage = locate_run_ensure(erasure_request=locked, actor=actor)
            audit_event_record(
                actor=actor,
                action="erasure_request.locate_requested",
                target=locked,
                details={"reference": locked.reference, "search": coverage.pk, "note_given": bool(note)},
            )
        else:
            services.erasure_request_start_locating(erasure_request=locked, actor=actor, note=note)
            if not request_has_searchable_data(locked):
                # ``locate_on_start`` queues a search only when there is something to search; run it
                # anyway so the coverage records that nothing was.
                locate_run_ensure(erasure_request=locked, actor=actor)
    erasure_request.refresh_from_db()
    return erasure_request


def locate_on_start(*, erasure_request: ErasureRequest) -> None:
    """Queue the search of a request that has just entered locating, when some data set in scope
    is indexed (listed for "start_locating" in ``settings.LETHE_TRANSITION_FOLLOW_UPS``); with
    nothing to search the workflow goes on as before."""
    if request_has_searchable_data(erasure_request):
        locate_run_ensure(erasure_request=erasure_request, actor=None)
