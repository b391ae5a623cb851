"""Load benchmark: gunicorn serving Lethe on PostgreSQL, under concurrent clients.

Seeds a bench database of its own (``lethe_load`` by default, never the dev or test database)
with erasure requests, a hash-chained audit log and a PII index, once, with COPY; starts gunicorn
on 127.0.0.1; logs an officer and an auditor in through the login page; then runs a fixed number
of client threads, each issuing requests in turn to the pages and the API below for a bounded
time and count, and reports p50/p95/max latency and errors per endpoint.

    python bench/load.py                       # seed if needed, then 20 clients for 60 s
    python bench/load.py --reseed --clients 20 --duration 60 --workers 3 --think 1
    python bench/load.py --think 0             # back to back: the server's saturation

Prints a table and writes ``bench/results/load.json``. Seeding is skipped when the database
already holds the sizes asked for; ``--reseed`` drops and rebuilds it. Requests created by the
API during a run stay in the database (the next run starts from a slightly bigger one; the JSON
records the sizes each run started from).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode, urlparse, urlunparse

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "load.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lethe_load"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/13"
PASSWORD = "lethe-load-bench-password-7"
#: Databases the benchmark refuses to seed: the development and test databases (and pytest's
#: ``test_*`` copies).
PROTECTED_DATABASES = {"lethe", "lethe_test", "lethe_dev", "postgres"}

sys.path.insert(0, str(REPO_ROOT))


# --- environment ------------------------------------------------------------------------------------


def configure_environment(args) -> dict:
    """Point this process (and gunicorn) at the bench database, broker and var dir."""
    name = urlparse(args.database_url).path.lstrip("/")
    if name in PROTECTED_DATABASES or not name or name.startswith("test_"):
        sys.exit(f"bench/load.py refuses database {name!r}: give it a bench database of its own.")
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.broker_url,
            "LETHE_VAR_DIR": str(args.var_dir),
            "LETHE_SECRET_KEY": "lethe-load-bench-secret-key-not-for-production-0123456789abcdef",
            # Fixed, so that the seeded identifiers decrypt whichever checkout and var dir run the
            # benchmark next (a generated key lives in the var dir and goes with it).
            "LETHE_IDENTIFIER_KEYS": "bGV0aGUtbG9hZC1iZW5jaC1pZGVudGlmaWVycy1rZXk=",
            "DJANGO_SETTINGS_MODULE": "compliance.settings",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    os.environ.update(env)
    return env


def database_ensure(database_url: str, *, drop: bool) -> None:
    """Create the bench database if it does not exist (drop it first with ``drop``)."""
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


# --- seeding ----------------------------------------------------------------------------------------


ACTIONS_AFTER_CREATE = (
    ("erasure_request.identity_verified", "received", "identity_verification"),
    ("erasure_request.locating_started", "identity_verification", "locating"),
    ("erasure_request.search_done", "locating", "locating"),
    ("erasure_request.review_started", "locating", "review"),
    ("erasure_request.candidates_confirmed", "review", "review"),
    ("erasure_request.approved", "review", "approved"),
    ("erasure_request.execution_started", "approved", "executing"),
    ("erasure_request.verification_started", "executing", "verifying"),
    ("erasure_request.completed", "verifying", "completed"),
)


def _copy(cursor, table: str, columns: list[str], rows) -> int:
    """COPY ``rows`` (tuples in ``columns`` order) into ``table``; return how many."""
    count = 0
    quoted = ", ".join(f'"{column}"' for column in columns)
    with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def seed(*, requests: int, events: int, records: int, findings_per_record: float, log) -> dict:
    """Fill the bench database; return the seconds each part took."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from compliance.audit import event_hash, format_timestamp
    from compliance.demo import demo_users_seed
    from compliance.models import AuditEvent
    from requests_app import deadlines
    from requests_app.identifiers import (
        SubjectIdentifiers,
        identifier_hashes,
        identifiers_encrypt,
        pii_hasher,
    )
    from requests_app.models import CLOSED_STATUSES, ErasureRequest, LegalGround, ReferenceCounter
    from requests_app.services import subject_identifiers_validate
    from unlearning_jobs.models import Dataset, DatasetRecord, DatasetVersion

    timings = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    demo_users_seed(password=PASSWORD)
    officer = get_user_model().objects.get(username="officer")
    Token.objects.get_or_create(user=officer)
    timings["migrate_users_s"] = time.perf_counter() - started

    have = {
        "requests": ErasureRequest.objects.count(),
        "events": AuditEvent.objects.count(),
        "records": DatasetRecord.objects.count(),
    }
    if have["requests"] >= requests and have["events"] >= events and have["records"] >= records:
        log(f"seed: database already holds {have}; not seeding (--reseed rebuilds it)")
        return timings
    if any(have[key] > 10 for key in ("requests", "records")):
        sys.exit(f"The bench database holds a partial seed {have}: run again with --reseed.")

    rng = random.Random(20261203)
    hasher = pii_hasher()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    legal_grounds = [choice for choice, _ in LegalGround.choices]
    channels = ["email", "phone", "form", "letter", "api"]
    open_path = [step[2] for step in ACTIONS_AFTER_CREATE[:-1]]

    # Requests: received over the last two years, older ones mostly closed. One in 25 open
    # requests is overdue, as a busy team's queue would be.
    started = time.perf_counter()
    request_rows, hash_rows, plans = [], [], []
    counters: dict[int, int] = defaultdict(int)
    span = timedelta(days=730)
    receipts = sorted(now - span * rng.random() - timedelta(hours=1) for _ in range(requests))
    for index, received_at in enumerate(receipts):
        age = now - received_at
        first_due = deadlines.first_due_at(received_at)
        if age > timedelta(days=45) or rng.random() < 0.5:
            status = rng.choice([s.value for s in CLOSED_STATUSES] + ["completed"] * 4)
            closed_at = received_at + timedelta(days=rng.uniform(3, 28))
            steps = len(ACTIONS_AFTER_CREATE) if status == "completed" else rng.randint(1, 4)
        else:
            steps = rng.randint(0, len(open_path))
            status = open_path[steps - 1] if steps else "received"
            closed_at = None
        counters[received_at.year] += 1
        name = f"Load Person{index}"
        subject = SubjectIdentifiers(
            names=(name,), emails=(f"person{index}@load.example",), account_ids=(f"ACC-{index:07d}",)
        )
        cleaned = subject_identifiers_validate(subject)
        request_rows.append(
            {
                "reference": f"ER-{received_at.year}-{counters[received_at.year]:06d}",
                "received_at": received_at,
                "channel": rng.choice(channels),
                "status": status,
                "legal_ground": rng.choice(legal_grounds),
                "identifiers_encrypted": identifiers_encrypt(cleaned.subject),
                "first_due_at": first_due,
                "due_at": first_due,
                "closed_at": closed_at,
                "assigned_officer_id": officer.pk,
                "created_by_id": officer.pk,
                "created_at": received_at,
                "updated_at": closed_at or received_at,
            }
        )
        hash_rows.append(identifier_hashes(cleaned, hasher=hasher))
        plans.append((received_at, steps, status))

    with transaction.atomic():
        ErasureRequest.objects.bulk_create([ErasureRequest(**row) for row in request_rows], batch_size=2000)
        ids = dict(ErasureRequest.objects.values_list("reference", "pk"))
        for year, last in counters.items():
            ReferenceCounter.objects.update_or_create(year=year, defaults={"last_number": last})
        with connection.cursor() as cursor:
            _copy(
                cursor.cursor,
                "requests_app_subjectidentifierhash",
                ["erasure_request_id", "entity_type", "digest", "key_id", "is_variant"],
                (
                    (
                        ids[row["reference"]],
                        item.entity_type.value,
                        item.digest,
                        hasher.key_id,
                        item.is_variant,
                    )
                    for row, hashes in zip(request_rows, hash_rows)
                    for item in hashes
                ),
            )
    timings["requests_s"] = time.perf_counter() - started

    # The audit log: each request's own history (created, then one event per step taken) and,
    # to reach ``events``, other system events; in time order, sealed into one chain after the
    # events the user seeding wrote.
    started = time.perf_counter()
    planned = []
    for row, (received_at, steps, status) in zip(request_rows, plans):
        pk = ids[row["reference"]]
        planned.append(
            (
                received_at,
                "erasure_request.created",
                pk,
                {
                    "reference": row["reference"],
                    "channel": row["channel"],
                    "legal_ground": row["legal_ground"],
                    "hash_key_id": hasher.key_id,
                },
            )
        )
        moment = received_at
        for action, from_status, to_status in ACTIONS_AFTER_CREATE[:steps]:
            moment += timedelta(hours=rng.uniform(1, 48))
            planned.append(
                (
                    moment,
                    action,
                    pk,
                    {"reference": row["reference"], "from_status": from_status, "to_status": to_status},
                )
            )
        if status in ("rejected", "withdrawn"):
            planned.append(
                (
                    row["closed_at"],
                    f"erasure_request.{status}",
                    pk,
                    {"reference": row["reference"], "to_status": status},
                )
            )
    while len(planned) < events:
        planned.append(
            (
                now - span * rng.random(),
                "worker.heartbeat_missed",
                None,
                {"worker": f"cpu{rng.randint(1, 8)}@load"},
            )
        )
    planned = sorted(planned[:events], key=lambda item: item[0])
    head = AuditEvent.objects.order_by("-sequence").first()
    sequence, previous = head.sequence, head.entry_hash
    last_moment = head.occurred_at

    def audit_rows():
        nonlocal sequence, previous, last_moment
        for moment, action, pk, details in planned:
            # The chain's order is its time order: never before the seeded users' events.
            moment = max(moment, last_moment + timedelta(microseconds=1))
            last_moment = moment
            sequence += 1
            object_type, object_id = ("requests_app.erasurerequest", str(pk)) if pk else ("", "")
            actor_label = "officer" if pk else "system"
            entry = event_hash(
                sequence=sequence,
                occurred_at=moment,
                actor_label=actor_label,
                action=action,
                object_type=object_type,
                object_id=object_id,
                details=details,
                previous_hash=previous,
            )
            yield (
                sequence,
                format_timestamp(moment),
                officer.pk if pk else None,
                actor_label,
                action,
                object_type,
                object_id,
                json.dumps(details, sort_keys=True),
                previous,
                entry,
            )
            previous = entry

    with transaction.atomic(), connection.cursor() as cursor:
        written = _copy(
            cursor.cursor,
            "compliance_auditevent",
            [
                "sequence",
                "occurred_at",
                "actor_id",
                "actor_label",
                "action",
                "object_type",
                "object_id",
                "details",
                "previous_hash",
                "entry_hash",
            ],
            audit_rows(),
        )
    timings["audit_events_s"] = time.perf_counter() - started
    log(f"seed: {len(request_rows)} requests, {written} audit events")

    # The PII index: one data-set version of ``records`` records, ``findings_per_record`` index
    # rows each on average; every 50th record holds a seeded person's e-mail, so that a search
    # for a person finds records, as it would in a real corpus.
    started = time.perf_counter()
    dataset = Dataset.objects.create(name="load-corpus", description="bench/load.py seed")
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        status="indexed",
        stored_path="load-corpus/v1",
        format="jsonl",
        text_fields=["text"],
        record_count=records,
        manifest_sha256="0" * 64,
        hash_key_id=hasher.key_id,
        chunk_size=10000,
        indexed_at=now,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        offset = 0

        def record_rows():
            nonlocal offset
            for ordinal in range(records):
                length = 150 + ordinal % 120
                yield (
                    version.pk,
                    f"rec-{ordinal:08d}",
                    ordinal,
                    ordinal + 1,
                    offset,
                    length + 24,
                    hashlib.sha256(str(ordinal).encode()).hexdigest(),
                    length,
                )
                offset += length + 25

        _copy(
            cursor.cursor,
            "unlearning_jobs_datasetrecord",
            [
                "version_id",
                "record_id",
                "ordinal",
                "line_no",
                "byte_offset",
                "byte_length",
                "text_sha256",
                "text_length",
            ],
            record_rows(),
        )
        cursor.execute(
            "SELECT min(id) FROM unlearning_jobs_datasetrecord WHERE version_id = %s", [version.pk]
        )
        first_id = cursor.fetchone()[0]

        def finding_rows():
            entity_types = ("PERSON", "EMAIL", "PHONE", "LOCATION", "DATE_OF_BIRTH")
            target = int(records * findings_per_record)
            for n in range(target):
                ordinal = n * records // target
                entity_type = entity_types[n % len(entity_types)]
                if entity_type == "EMAIL" and ordinal % 50 == 0:
                    value = f"person{ordinal % requests}@load.example"
                else:
                    value = f"{entity_type}-{n}"
                digest = hasher.hash(entity_type, value.lower())
                sorted_hash = digest if entity_type == "PERSON" else None
                yield (version.pk, first_id + ordinal, entity_type, 10, 30, 0.85, "load", digest, sorted_hash)

        findings = _copy(
            cursor.cursor,
            "unlearning_jobs_piifinding",
            [
                "version_id",
                "record_id",
                "entity_type",
                "start",
                "end",
                "score",
                "recogniser",
                "value_hash",
                "sorted_hash",
            ],
            finding_rows(),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    timings["pii_index_s"] = time.perf_counter() - started
    log(f"seed: {records} records, {findings} PII index rows")
    return timings


def database_sizes() -> dict:
    """Return row counts and on-disk sizes of the tables the benchmark is about."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for key, table in (
            ("requests", "requests_app_erasurerequest"),
            ("audit_events", "compliance_auditevent"),
            ("records", "unlearning_jobs_datasetrecord"),
            ("pii_index_rows", "unlearning_jobs_piifinding"),
        ):
            cursor.execute(
                f"SELECT count(*), pg_table_size('{table}'), pg_indexes_size('{table}') FROM {table}"
            )
            rows, table_bytes, index_bytes = cursor.fetchone()
            sizes[key] = {"rows": rows, "table_bytes": table_bytes, "index_bytes": index_bytes}
    return sizes


# --- the server -------------------------------------------------------------------------------------


def gunicorn_start(*, env: dict, port: int, workers: int, threads: int, log_path: Path) -> subprocess.Popen:
    """Start gunicorn on 127.0.0.1:``port`` and wait until it answers."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [
        str(gunicorn),
        "compliance.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]
    log_file = open(log_path, "w")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/login/")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    gunicorn_stop(process)
    sys.exit(f"gunicorn did not answer on 127.0.0.1:{port} within 60 s; see {log_path}")


def gunicorn_stop(process: subprocess.Popen) -> None:
    """Stop the gunicorn master this benchmark started, and its workers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- clients ----------------------------------------------------------------------------------------


class Client:
    """One HTTP/1.1 client with its own connection and cookies."""

    def __init__(self, port: int, *, cookies: dict | None = None, headers: dict | None = None):
        self.port = port
        self.cookies = dict(cookies or {})
        self.headers = dict(headers or {})
        self.connection = None

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None):
        all_headers = {**self.headers, **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request(method, path, body=body, headers=all_headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed a kept-alive connection between two requests: open a new one.
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            except (OSError, http.client.HTTPException):
                # A timeout or a broken response leaves the connection mid-request: the next
                # request must not reuse it.
                self.connection.close()
                self.connection = None
                raise
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.will_close:
                self.connection.close()
                self.connection = None
            return response.status, data
        raise AssertionError("unreachable")


def login(port: int, username: str) -> dict:
    """Log ``username`` in through the login page; return the session's cookies."""
    client = Client(port)
    status, page = client.request("GET", "/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    body = urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}).encode()
    status, _ = client.request(
        "POST",
        "/login/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://127.0.0.1:{port}/login/",
        },
    )
    if status != 302 or "sessionid" not in client.cookies:
        sys.exit(f"Logging in as {username} failed (status {status}).")
    return client.cookies


def endpoints(*, request_ids: list[int], register_month: tuple[str, str]) -> list[tuple[str, str, callable]]:
    """Return (name, role, make) triples; ``make(rng, n)`` returns (method, path, body, headers)."""

    def get(path_for):
        return lambda rng, n: ("GET", path_for(rng), None, {})

    def create(rng, n):
        unique = f"{os.getpid()}-{threading.get_ident()}-{n}-{rng.randrange(10**9)}"
        body = json.dumps(
            {
                "subject": {"names": [f"Api Person {unique}"], "emails": [f"api-{unique}@load.example"]},
                "legal_ground": "art17_1_b",
            }
        ).encode()
        return "POST", "/api/v1/requests/", body, {"Content-Type": "application/json"}

    def pick(rng):
        return rng.choice(request_ids)

    list_pages = max(1, -(-len(request_ids) // 50))  # the officer's list shows 50 a page

    start, end = register_month
    return [
        ("officer: open requests /requests/", "officer", get(lambda rng: "/requests/")),
        (
            "officer: all requests, a page",
            "officer",
            get(lambda rng: f"/requests/all/?page={rng.randint(1, min(50, list_pages))}"),
        ),
        ("officer: a request /requests/<id>/", "officer", get(lambda rng: f"/requests/{pick(rng)}/")),
        ("auditor: home /audit/", "auditor", get(lambda rng: "/audit/")),
        (
            "auditor: a request /audit/requests/<id>/",
            "auditor",
            get(lambda rng: f"/audit/requests/{pick(rng)}/"),
        ),
        (
            "auditor: register, one month",
            "auditor",
            get(lambda rng: f"/audit/register/?from={start}&to={end}"),
        ),
        ("api: create POST /api/v1/requests/", "api", create),
    ]


def run_clients(
    *,
    port: int,
    clients: int,
    duration: float,
    max_requests: int,
    think: float,
    sessions: dict,
    targets,
    seed_value: int,
) -> dict:
    """Run ``clients`` threads over ``targets`` until ``duration`` or ``max_requests``; return samples."""
    samples: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + duration

    def worker(number: int):
        nonlocal issued
        rng = random.Random(seed_value * 1000 + number)
        by_role = {role: Client(port, **session) for role, session in sessions.items()}
        n = number  # threads start at different endpoints, so every endpoint is hit from the start
        while time.monotonic() < deadline:
            with lock:
                if issued >= max_requests:
                    return
                issued += 1
            name, role, make = targets[n % len(targets)]
            n += 1
            method, path, body, headers = make(rng, n)
            began = time.perf_counter()
            try:
                status, data = by_role[role].request(method, path, body=body, headers=headers)
                elapsed = time.perf_counter() - began
                problem = None if status in (200, 201) else f"{status} {method} {path}: {data[:200]!r}"
            except (OSError, http.client.HTTPException) as error:
                elapsed = time.perf_counter() - began
                problem = f"{type(error).__name__} {method} {path}: {error}"
            with lock:
                samples[name].append(elapsed)
                if problem:
                    errors[name].append(problem)
            if think:
                time.sleep(rng.uniform(0, 2 * think))

    threads = [threading.Thread(target=worker, args=(number,), daemon=True) for number in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 120)
    wall = time.perf_counter() - began
    return {"samples": samples, "errors": errors, "wall_s": wall, "issued": issued}


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile: the smallest value with ``fraction`` of all at or below it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = math.ceil(fraction * len(ordered) - 1e-9)
    return ordered[min(len(ordered), max(1, rank)) - 1]


# --- how much of the machine was ours --------------------------------------------------------------


def machine_cpu_seconds() -> float:
    """Return the CPU-seconds every core of this machine has spent busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(stat_text: str) -> float:
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def group_cpu_seconds(process_group: int) -> float:
    """Return the CPU-seconds used so far by the live processes of ``process_group`` (gunicorn's)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended while the folder was listed
        if int(text.rsplit(")", 1)[1].split()[2]) == process_group:
            total += _process_cpu_seconds(text)
    return total


class DatabaseCpuSampler:
    """Sum the CPU of the PostgreSQL backends serving the bench database while the load runs.

    PostgreSQL runs on this machine; its backends connected to the bench database (found by
    their process title, ``postgres: … <user> <database> <host> …``) do the work the pages cause
    in the database, apart from other databases' backends (other people's tests). Django closes
    a connection after 60 s and opens another, so the backends are sampled every half second and
    each one's last reading counts.
    """

    def __init__(self, database_url: str):
        self.marker = f" {urlparse(database_url).path.lstrip('/')} "
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, float]:
        found = {}
        for folder in Path("/proc").glob("[0-9]*"):
            try:
                title = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if title.startswith("postgres: ") and self.marker in title:
                    found[int(folder.name)] = _process_cpu_seconds((folder / "stat").read_text())
            except OSError:
                continue  # the process ended while the folder was listed
        return found

    def _run(self):
        while not self.stop.wait(0.5):
            self.last.update(self._sample())

    def __enter__(self):
        self.first = self._sample()
        self.last = dict(self.first)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        self.last.update(self._sample())

    @property
    def seconds(self) -> float:
        return sum(value - self.first.get(pid, 0.0) for pid, value in self.last.items())


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --- main -------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("LETHE_LOAD_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="the broker the web processes are configured with; recording a request "
        "sends no task, so the benchmark never writes to it (nor flushes it)",
    )
    parser.add_argument("--var-dir", type=Path, default=REPO_ROOT / "var" / "load")
    parser.add_argument("--reseed", action="store_true", help="drop the bench database and seed it again")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--findings-per-record", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--max-requests", type=int, default=20_000, help="stop after this many requests")
    parser.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="mean seconds a client waits between requests, uniform on [0, 2 x think] "
        "(a person reading the page); 0: back to back, which measures saturation",
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread if > 1)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--target-p95-ms", type=float, default=150.0)
    args = parser.parse_args(argv)

    def log(message):
        print(message, flush=True)

    env = configure_environment(args)
    args.var_dir.mkdir(parents=True, exist_ok=True)
    database_ensure(args.database_url, drop=args.reseed)
    seeded = time.perf_counter()
    timings = seed(
        requests=args.requests,
        events=args.events,
        records=args.records,
        findings_per_record=args.findings_per_record,
        log=log,
    )
    timings["seed_total_s"] = time.perf_counter() - seeded
    log("seed: " + ", ".join(f"{key} {value:.1f}" for key, value in timings.items()))
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from requests_app.models import ErasureRequest

    sizes = database_sizes()
    log(f"database: {json.dumps({k: v['rows'] for k, v in sizes.items()})}")
    if args.seed_only:
        return 0
    request_ids = list(ErasureRequest.objects.values_list("pk", flat=True))
    token = Token.objects.get(user=get_user_model().objects.get(username="officer")).key
    month_start = (datetime.now(timezone.utc).replace(day=1) - timedelta(days=90)).replace(day=1).date()
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    connection.close()

    process = gunicorn_start(
        env=env,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        log_path=args.var_dir / "gunicorn.log",
    )
    try:
        sessions = {
            "officer": {"cookies": login(args.port, "officer")},
            "auditor": {"cookies": login(args.port, "auditor")},
            "api": {"headers": {"Authorization": f"Token {token}", "Accept": "application/json"}},
        }
        targets = endpoints(
            request_ids=request_ids, register_month=(month_start.isoformat(), month_end.isoformat())
        )
        # Warm-up: every endpoint a few times on every worker (imports, template caches, and the
        # audit chain's first full verification), not measured.
        warm = run_clients(
            port=args.port,
            clients=min(args.clients, 2 * args.workers),
            duration=60,
            max_requests=len(targets) * args.workers * 2,
            think=0,
            sessions=sessions,
            targets=targets,
            seed_value=1,
        )
        load_before = os.getloadavg()
        cpu_before = (machine_cpu_seconds(), group_cpu_seconds(process.pid), own_cpu_seconds())
        with DatabaseCpuSampler(args.database_url) as database_cpu:
            result = run_clients(
                port=args.port,
                clients=args.clients,
                duration=args.duration,
                max_requests=args.max_requests,
                think=args.think,
                sessions=sessions,
                targets=targets,
                seed_value=2,
            )
        load_after = os.getloadavg()
        cpu_after = (machine_cpu_seconds(), group_cpu_seconds(process.pid), own_cpu_seconds())
    finally:
        gunicorn_stop(process)

    rows = []
    for name, _, _ in targets:
        values = result["samples"].get(name, [])
        rows.append(
            {
                "endpoint": name,
                "requests": len(values),
                "errors": len(result["errors"].get(name, [])),
                "p50_ms": round(percentile(values, 0.50) * 1000, 1),
                "p95_ms": round(percentile(values, 0.95) * 1000, 1),
                "max_ms": round(max(values) * 1000, 1) if values else None,
                "first_errors": result["errors"].get(name, [])[:3],
                "latencies_ms": [round(value * 1000, 2) for value in values],
            }
        )
    total = sum(row["requests"] for row in rows)
    worst = max(row["p95_ms"] for row in rows)
    errors = sum(row["errors"] for row in rows)
    verdict = "PASS" if worst <= args.target_p95_ms and errors == 0 else "FAIL"

    print()
    print(f"{'endpoint':45} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for row in rows:
        print(
            f"{row['endpoint']:45} {row['requests']:8d} {row['errors']:6d} {row['p50_ms']:8.1f} "
            f"{row['p95_ms']:8.1f} {row['max_ms'] or 0:8.1f}"
        )
    print(
        f"{total} requests in {result['wall_s']:.1f} s ({total / result['wall_s']:.1f}/s), {args.clients} clients, "
        f"think {args.think} s, gunicorn {args.workers} workers x {args.threads} threads; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min), cores {os.cpu_count()}"
    )
    machine, server, client = (after - before for before, after in zip(cpu_before, cpu_after))
    database = database_cpu.seconds
    cpu = {
        "machine_busy_s": round(machine, 1),
        "gunicorn_s": round(server, 1),
        "clients_s": round(client, 1),
        "postgresql_s": round(database, 1),
        "others_s": round(max(0.0, machine - server - client - database), 1),
        "wall_s": round(result["wall_s"], 1),
    }
    print(
        f"CPU-seconds during the run: machine {cpu['machine_busy_s']} of {result['wall_s'] * os.cpu_count():.0f}"
        f" available; gunicorn {cpu['gunicorn_s']}, PostgreSQL for it {cpu['postgresql_s']}, clients "
        f"{cpu['clients_s']}, everything else {cpu['others_s']} (other users); per request "
        f"{1000 * server / max(1, total):.1f} ms of gunicorn and {1000 * database / max(1, total):.1f} ms of "
        f"PostgreSQL CPU"
    )
    print(
        f"target p95 <= {args.target_p95_ms:.0f} ms and 0 errors: {verdict} (worst p95 {worst:.1f} ms, "
        f"{errors} errors)"
    )
    for row in rows:
        for problem in row["first_errors"]:
            print(f"  error: {problem}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "commit": subprocess.run(
                    ["git", "describe", "--always", "--dirty", "--abbrev=7"],
                    cwd=REPO_ROOT,
                    capture_output=True,
                    text=True,
                ).stdout.strip(),
                "config": {
                    key: (str(value) if isinstance(value, Path) else value)
                    for key, value in vars(args).items()
                },
                "database": sizes,
                "seed_timings": timings,
                "load_average": {"before": load_before, "after": load_after},
                "cpu_count": os.cpu_count(),
                "cpu_seconds": cpu,
                "warmup_requests": sum(len(v) for v in warm["samples"].values()),
                "wall_s": result["wall_s"],
                "throughput_per_s": total / result["wall_s"],
                "endpoints": rows,
                "verdict": verdict,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
