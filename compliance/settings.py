"""Django settings for Lethe, read from the environment (see README, "Configuration").

Nothing set gives the embedded default: SQLite and a file-system Celery broker under ``var/``,
a secret key generated once into ``var/secret_key``, DEBUG off.
"""

from __future__ import annotations

import os
from pathlib import Path

from compliance.env import (
    account_id_prefixes,
    broker_config,
    database_config,
    env_flag,
    identifier_keys,
    master_key,
    pii_hash_key,
    pii_hash_key_id,
    retired_master_keys,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LETHE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)
LETHE_DATA_DIR = Path(os.environ.get("LETHE_DATA_DIR", VAR_DIR / "data"))

SECRET_KEY = secret_key(os.environ.get("LETHE_SECRET_KEY"), var_dir=VAR_DIR)
DEBUG = env_flag(os.environ.get("DEBUG"))
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]
CSRF_TRUSTED_ORIGINS = [
    origin.strip() for origin in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if origin.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "compliance.apps.ComplianceConfig",
    "requests_app.apps.RequestsAppConfig",
    "unlearning_jobs.apps.UnlearningJobsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "compliance.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "compliance.wsgi.application"

DATABASES = {"default": database_config(os.environ.get("DATABASE_URL"), var_dir=VAR_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id for new and changed passwords (Django's recommendation); older hashes still verify and
# are upgraded at the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Sessions and cookies (docs/security.md). A role that can reveal identifiers must not stay signed
# in for two weeks: sessions last LETHE_SESSION_SECONDS (8 hours) and end with the browser; cookies
# are SameSite=Strict. Behind TLS (LETHE_HTTPS=1) cookies are secure, plain HTTP is redirected, and
# HSTS is sent; LETHE_TRUST_X_FORWARDED_PROTO=1 when a proxy terminates TLS and sets that header.
SESSION_COOKIE_AGE = int(os.environ.get("LETHE_SESSION_SECONDS", str(8 * 60 * 60)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_HTTPONLY = True
LETHE_HTTPS = env_flag(os.environ.get("LETHE_HTTPS"))
SESSION_COOKIE_SECURE = LETHE_HTTPS
CSRF_COOKIE_SECURE = LETHE_HTTPS
SECURE_SSL_REDIRECT = env_flag(os.environ.get("LETHE_SSL_REDIRECT"), default=LETHE_HTTPS)
SECURE_HSTS_SECONDS = int(os.environ.get("LETHE_HSTS_SECONDS", "31536000" if LETHE_HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag(
    os.environ.get("LETHE_HSTS_INCLUDE_SUBDOMAINS"), default=LETHE_HTTPS
)
SECURE_HSTS_PRELOAD = env_flag(os.environ.get("LETHE_HSTS_PRELOAD"))
if env_flag(os.environ.get("LETHE_TRUST_X_FORWARDED_PROTO")):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sign-in throttling (compliance/throttle.py): after this many failed passwords for one username
# from one address within the window, further attempts are refused until it ends.
LETHE_LOGIN_MAX_FAILURES = int(os.environ.get("LETHE_LOGIN_MAX_FAILURES", "10"))
LETHE_LOGIN_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("LETHE_LOGIN_MAX_FAILURES_PER_ADDRESS", "100"))
LETHE_LOGIN_WINDOW_SECONDS = int(os.environ.get("LETHE_LOGIN_WINDOW_SECONDS", str(15 * 60)))
# The cache counts sign-in failures and API calls: every web process must share it in production
# (LETHE_CACHE_URL=redis://host:6379/2); unset, each process counts on its own (embedded default).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["LETHE_CACHE_URL"]}
        if os.environ.get("LETHE_CACHE_URL", "").strip()
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "lethe"}
    )
}
# Content Security Policy (django-csp; docs/security.md): scripts, styles, fonts and images from
# Lethe itself only (htmx and Swagger UI are served from static/), no inline script or style, no
# plug-ins, no framing, forms posting to Lethe only. LETHE_CSP_REPORT_URI collects violations.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        **(
            {"report-uri": [os.environ["LETHE_CSP_REPORT_URI"]]}
            if os.environ.get("LETHE_CSP_REPORT_URI", "").strip()
            else {}
        ),
    }
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("LETHE_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the source folders too, so a fresh clone needs no collectstatic to look right.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "lethe@localhost")

# API tokens (compliance/tokens.py): stored as SHA-256, shown once, expiring after this many days.
LETHE_API_TOKEN_DAYS = int(os.environ.get("LETHE_API_TOKEN_DAYS", "90"))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "compliance.tokens.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Throttles (docs/security.md): per user, per anonymous address, and tighter scopes on what
    # reveals whether a person is known (search, revealing identifiers) or runs a model. A 429
    # answers in the one error shape with Retry-After. Counted in CACHES["default"].
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("LETHE_API_RATE_USER", "600/minute"),
        "anon": os.environ.get("LETHE_API_RATE_ANON", "30/minute"),
        "identifier_search": os.environ.get("LETHE_API_RATE_IDENTIFIER_SEARCH", "60/minute"),
        "generate": os.environ.get("LETHE_API_RATE_GENERATE", "30/minute"),
    },
    # Reverse proxies in front of Lethe whose X-Forwarded-For is trusted (0: the peer's address).
    "NUM_PROXIES": int(os.environ.get("LETHE_NUM_PROXIES", "0")) or None,
    # The one API base (compliance/api.py): one error shape, every error documented in the schema.
    "DEFAULT_SCHEMA_CLASS": "compliance.api.ApiSchema",
    "EXCEPTION_HANDLER": "compliance.api.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lethe API",
    "DESCRIPTION": "GDPR erasure requests through training data and models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs describe every route, parameter and error: signed-in users only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Token first: an anonymous caller is told 401 with the scheme to use, as on every endpoint.
    "SERVE_AUTHENTICATION": [
        "compliance.tokens.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Swagger UI from the pinned copy in drf-spectacular-sidecar, served as a static file: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery. Job state lives in Lethe's own tables; the result backend is not used for it.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_config(
    os.environ.get("CELERY_BROKER_URL"), var_dir=VAR_DIR
)
CELERY_TASK_ALWAYS_EAGER = env_flag(os.environ.get("CELERY_TASK_ALWAYS_EAGER"))
# Every module that defines Celery tasks, listed here instead of discovered: a worker registers
# exactly these (docs/architecture.md).
CELERY_IMPORTS = (
    "requests_app.tasks",
    "requests_app.matching.tasks",
    "unlearning_jobs.datasets.tasks",
    "unlearning_jobs.jobs.tasks",
    "unlearning_jobs.workers.tasks",
    "compliance.tasks",
)
LETHE_HEARTBEAT_SECONDS = float(os.environ.get("LETHE_HEARTBEAT_SECONDS", "5"))
LETHE_WORKER_STALE_SECONDS = float(os.environ.get("LETHE_WORKER_STALE_SECONDS", "60"))
# /metrics (docs/operations.md): a scraper sends "Authorization: Bearer <this>"; unset, only an
# engineer's logged-in session may read the metrics.
LETHE_METRICS_TOKEN = os.environ.get("LETHE_METRICS_TOKEN", "")

LETHE_DEMO_PASSWORD = os.environ.get("LETHE_DEMO_PASSWORD", "")
# The demo story (compliance/demo_story.py, docs/operations.md "The demo"): once the demo model
# has trained, requests at every stage are walked through the workflow by the demo officer. Off
# with LETHE_DEMO_STORY=0. LETHE_DEMO_TRAIN_EPOCHS: the demo model's training epochs.
LETHE_DEMO_STORY = env_flag(os.environ.get("LETHE_DEMO_STORY"), default=True)
LETHE_DEMO_TRAIN_EPOCHS = int(os.environ.get("LETHE_DEMO_TRAIN_EPOCHS", "8"))

# Erasure requests (docs/workflow.md): identifiers encrypted with Fernet (first key encrypts, all
# decrypt), keyed hashes of normalised identifiers, deadlines and the retention of identifiers.
LETHE_IDENTIFIER_KEYS = identifier_keys(os.environ.get("LETHE_IDENTIFIER_KEYS"), var_dir=VAR_DIR)
LETHE_PII_HASH_KEY = pii_hash_key(os.environ.get("LETHE_PII_HASH_KEY"), secret_key=SECRET_KEY)
LETHE_PII_HASH_KEY_ID = pii_hash_key_id(os.environ.get("LETHE_PII_HASH_KEY_ID"), key=LETHE_PII_HASH_KEY)
# Guard rules (docs/security.md, "Keys"): each deployment's rules are hashed under its own key,
# derived with HKDF from this master key, never under the index key above. Generated into var/
# when unset; `check --deploy` requires it (lethe.E001). Retired master keys (comma-separated)
# still serve rule sets hashed under them until `manage.py guard_rules_rekey` has re-hashed them.
LETHE_GUARD_MASTER_KEY_CONFIGURED = bool(os.environ.get("LETHE_GUARD_MASTER_KEY", "").strip())
LETHE_GUARD_MASTER_KEY = master_key(
    os.environ.get("LETHE_GUARD_MASTER_KEY"), name="LETHE_GUARD_MASTER_KEY", var_dir=VAR_DIR
)
# The audit chain's key (docs/security.md, "The audit log"): every event's hash is sealed with an
# HMAC under it, so a rewrite of the table from any row onward no longer verifies without it.
# Generated into var/ when unset; `check --deploy` requires it (lethe.E002). Retired keys
# (comma-separated) still verify the events sealed with them.
LETHE_AUDIT_CHAIN_KEY_CONFIGURED = bool(os.environ.get("LETHE_AUDIT_CHAIN_KEY", "").strip())
LETHE_AUDIT_CHAIN_KEY = master_key(
    os.environ.get("LETHE_AUDIT_CHAIN_KEY"), name="LETHE_AUDIT_CHAIN_KEY", var_dir=VAR_DIR
)
LETHE_AUDIT_CHAIN_RETIRED_KEYS = retired_master_keys(
    os.environ.get("LETHE_AUDIT_CHAIN_RETIRED_KEYS"), name="LETHE_AUDIT_CHAIN_RETIRED_KEYS"
)
LETHE_GUARD_RETIRED_MASTER_KEYS = retired_master_keys(
    os.environ.get("LETHE_GUARD_RETIRED_MASTER_KEYS"), name="LETHE_GUARD_RETIRED_MASTER_KEYS"
)
LETHE_PHONE_REGION = os.environ.get("LETHE_PHONE_REGION", "GB").strip().upper()
# Regions a phone number given without a country code is tried in, after LETHE_PHONE_REGION; a
# number valid in none is kept as given and located by its digits (docs/pii.md, "Match keys").
LETHE_PHONE_REGIONS = [
    region.strip().upper()
    for region in os.environ.get("LETHE_PHONE_REGIONS", "GB,US,DE,FR,ES,IT,NL,IE,AU,CA").split(",")
    if region.strip()
]
# Account-id prefixes that mean the same account for match keys (docs/pii.md, "Match keys"):
# "ACC=ACCT,ACCOUNT;CUST=CUSTOMER,CLIENT". Empty: the defaults (ACC, CUST, MEM and their spellings).
LETHE_ACCOUNT_ID_PREFIXES = account_id_prefixes(os.environ.get("LETHE_ACCOUNT_ID_PREFIXES", ""))
# Index detection-free match keys besides Presidio's findings (on by default; off only to compare).
LETHE_PII_MATCH_KEYS = env_flag(os.environ.get("LETHE_PII_MATCH_KEYS"), default=True)
# Locating: a name beside an e-mail, phone or account id of the person's own strong records (not
# given in the request) is a strong candidate too (docs/datasets.md, "Linked identifiers").
LETHE_LOCATE_LINKED_IDENTIFIERS = env_flag(os.environ.get("LETHE_LOCATE_LINKED_IDENTIFIERS"), default=True)
LETHE_RETENTION_DAYS = int(os.environ.get("LETHE_RETENTION_DAYS", "365"))
LETHE_DUE_SOON_DAYS = int(os.environ.get("LETHE_DUE_SOON_DAYS", "7"))
LETHE_SITE_URL = os.environ.get("LETHE_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Named in every rejection reply (Art. 12(4)); empty: the reply names the authority generically.
LETHE_SUPERVISORY_AUTHORITY = os.environ.get("LETHE_SUPERVISORY_AUTHORITY", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LETHE_LOG_LEVEL", "INFO")},
    "loggers": {"presidio-analyzer": {"level": "ERROR"}},
}

# Audit reports (docs/reports.md): the HMAC-SHA256 key that signs them and its id. Unset, the key
# is derived from the secret key; set LETHE_REPORT_SIGNING_KEY in production so that a new secret
# key does not orphan issued reports. Retired keys (a JSON object {"<key id>": "<key>"}) no longer
# sign but still verify the reports signed with them.
from compliance.reports.keys import (  # noqa: E402  (kept beside the settings it computes)
    report_signing_key,
    report_signing_key_id,
    report_signing_private_key_pem,
    retired_public_keys,
    retired_signing_keys,
)

LETHE_REPORT_SIGNING_KEY = report_signing_key(
    os.environ.get("LETHE_REPORT_SIGNING_KEY"), secret_key=SECRET_KEY
)
LETHE_REPORT_SIGNING_KEY_ID = report_signing_key_id(
    os.environ.get("LETHE_REPORT_SIGNING_KEY_ID"), key=LETHE_REPORT_SIGNING_KEY
)
LETHE_REPORT_RETIRED_SIGNING_KEYS = retired_signing_keys(os.environ.get("LETHE_REPORT_RETIRED_SIGNING_KEYS"))
# Reports are signed with Ed25519 (docs/reports.md, "Signatures"): anyone verifies with the public
# key; the HMAC key above only still verifies reports issued before. Set the private key in
# production (PEM in LETHE_REPORT_SIGNING_PRIVATE_KEY or a file in ..._FILE); otherwise one is
# generated once into var/ and `check --deploy` warns.
LETHE_REPORT_SIGNING_PRIVATE_KEY_CONFIGURED = bool(
    os.environ.get("LETHE_REPORT_SIGNING_PRIVATE_KEY", "").strip()
    or os.environ.get("LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE", "").strip()
)
LETHE_REPORT_SIGNING_PRIVATE_KEY_PEM = report_signing_private_key_pem(
    os.environ.get("LETHE_REPORT_SIGNING_PRIVATE_KEY"),
    key_file=os.environ.get("LETHE_REPORT_SIGNING_PRIVATE_KEY_FILE"),
    var_dir=VAR_DIR,
)
LETHE_REPORT_RETIRED_PUBLIC_KEYS = retired_public_keys(os.environ.get("LETHE_REPORT_RETIRED_PUBLIC_KEYS"))
# WeasyPrint reports every layout step at INFO; only its warnings belong in the log.
LOGGING["loggers"].update({"weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}})

# Data sets and the PII index (docs/datasets.md). Files are registered only from LETHE_DATA_DIR or
# from LETHE_IMPORT_ROOTS (folders separated by os.pathsep); uploads from the browser are limited
# to LETHE_UPLOAD_MAX_BYTES, files registered by path to LETHE_IMPORT_MAX_BYTES. Indexing runs in
# chunks of LETHE_INDEX_CHUNK_SIZE records; a chunk claimed longer ago than
# LETHE_INDEX_STALE_SECONDS by a worker that never finished it may be claimed again.
LETHE_IMPORT_ROOTS = [
    Path(root).expanduser()
    for root in os.environ.get("LETHE_IMPORT_ROOTS", "").split(os.pathsep)
    if root.strip()
]
LETHE_UPLOAD_MAX_BYTES = int(os.environ.get("LETHE_UPLOAD_MAX_BYTES", str(100 * 1024 * 1024)))
# The size limit is enforced while the upload streams in, before Django spools it (compliance/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "compliance.uploads.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
LETHE_IMPORT_MAX_BYTES = int(os.environ.get("LETHE_IMPORT_MAX_BYTES", str(20 * 1024**3)))
LETHE_INDEX_CHUNK_SIZE = int(os.environ.get("LETHE_INDEX_CHUNK_SIZE", "500"))
LETHE_INDEX_STALE_SECONDS = float(os.environ.get("LETHE_INDEX_STALE_SECONDS", "900"))
LETHE_INDEX_MAX_ATTEMPTS = int(os.environ.get("LETHE_INDEX_MAX_ATTEMPTS", "3"))
# Importing pretrained models (docs/jobs.md, "Bring your own model"): a .gguf file or a checkpoint
# directory is converted once into a base under LETHE_DATA_DIR/models. With LETHE_IMPORT_CACHE_DIR
# set, conversions are kept there by the source's SHA-256 and an import of the same bytes reuses
# one (hard links) instead of converting again; empty: no cache.
LETHE_IMPORT_CACHE_DIR = os.environ.get("LETHE_IMPORT_CACHE_DIR", "").strip()

# Unlearning jobs (docs/jobs.md, docs/operations.md). A running job checkpoints every
# LETHE_JOB_CHECKPOINT_EVERY optimiser steps and writes its progress (and reads a cancel) every
# LETHE_JOB_PROGRESS_SECONDS; its log keeps the newest LETHE_JOB_LOG_MAX_CHARS characters. A job is
# given up after LETHE_JOB_MAX_ATTEMPTS attempts lost to transient errors or dead workers.
# LETHE_JOB_DEVICE pins a worker's model work to one torch device ("cpu", "cuda:1"); empty: CUDA
# when present (bf16 where supported), else the CPU.
LETHE_JOB_CHECKPOINT_EVERY = int(os.environ.get("LETHE_JOB_CHECKPOINT_EVERY", "50"))
LETHE_JOB_PROGRESS_SECONDS = float(os.environ.get("LETHE_JOB_PROGRESS_SECONDS", "1"))
LETHE_JOB_LOG_MAX_CHARS = int(os.environ.get("LETHE_JOB_LOG_MAX_CHARS", "200000"))
LETHE_JOB_MAX_ATTEMPTS = int(os.environ.get("LETHE_JOB_MAX_ATTEMPTS", "5"))
LETHE_JOB_DEVICE = os.environ.get("LETHE_JOB_DEVICE", "").strip()

# Verification (docs/verification.md, "In the application"). LETHE_VERIFY_THRESHOLDS overrides
# the engine's documented defaults (engine/verify/thresholds.py: extraction_rate <= 0,
# verbmem_rouge_l <= 0.5, verbmem_gap_to_reference <= 0.1, mia_auc_* |AUC - 0.5| <= 0.1,
# privleak_* |PrivLeak| <= 10, utility_ratio_* >= 0.95, tofu_forget_quality >= 0.05), keyed by
# metric: a number replaces the limit, an object sets comparator/limit/center. Given as JSON in the
# environment; an unknown metric name is refused when a verify job starts, so a typo cannot drop a
# check. LETHE_VERIFY_MIN_HOLDOUT non-member records are needed from the data set itself before
# synthetic ones are added (docs/verification.md); LETHE_VERIFY_RETAIN_SAMPLE caps the retain
# sample; LETHE_VERIFY_AUTO queues verify jobs after every unlearning job of a request.
import json  # noqa: E402  (only the verification block reads JSON)

LETHE_VERIFY_THRESHOLDS = json.loads(os.environ.get("LETHE_VERIFY_THRESHOLDS", "") or "{}")
LETHE_VERIFY_MIN_HOLDOUT = int(os.environ.get("LETHE_VERIFY_MIN_HOLDOUT", "20"))
LETHE_VERIFY_MAX_HOLDOUT = int(os.environ.get("LETHE_VERIFY_MAX_HOLDOUT", "200"))
LETHE_VERIFY_RETAIN_SAMPLE = int(os.environ.get("LETHE_VERIFY_RETAIN_SAMPLE", "200"))
LETHE_VERIFY_AUTO = env_flag(os.environ.get("LETHE_VERIFY_AUTO"), default=True)
# The robustness section of every verify job (docs/verification.md, "Robustness"): a relearning
# attack (LETHE_VERIFY_ROBUSTNESS_RELEARN_STEPS steps at ..._RELEARN_LEARNING_RATE on a seeded
# ..._ATTACK_FRACTION of the forget records), weight quantization at ..._QUANTIZATION_BITS, and
# paraphrase and compliant-opening probes, measured on at most ..._MAX_EVAL_RECORDS records and
# ..._MAX_EVAL_ITEMS TOFU questions. The original, the exact retrain and every produced model are
# all measured with the same settings (the recovery rows need all three). The defaults are the
# engine's and keep one verify job of the demo model to seconds on the CPU; off with
# LETHE_VERIFY_ROBUSTNESS=0 (the recovery rows then read "not measured").
LETHE_VERIFY_ROBUSTNESS = env_flag(os.environ.get("LETHE_VERIFY_ROBUSTNESS"), default=True)
LETHE_VERIFY_ROBUSTNESS_ATTACKS = [
    name.strip()
    for name in os.environ.get("LETHE_VERIFY_ROBUSTNESS_ATTACKS", "relearning,quantization,paraphrase").split(
        ","
    )
    if name.strip()
]
LETHE_VERIFY_ROBUSTNESS_ATTACK_FRACTION = float(
    os.environ.get("LETHE_VERIFY_ROBUSTNESS_ATTACK_FRACTION", "0.25")
)
LETHE_VERIFY_ROBUSTNESS_RELEARN_STEPS = int(os.environ.get("LETHE_VERIFY_ROBUSTNESS_RELEARN_STEPS", "10"))
LETHE_VERIFY_ROBUSTNESS_RELEARN_LEARNING_RATE = float(
    os.environ.get("LETHE_VERIFY_ROBUSTNESS_RELEARN_LEARNING_RATE", "3e-4")
)
LETHE_VERIFY_ROBUSTNESS_QUANTIZATION_BITS = [
    int(bits)
    for bits in os.environ.get("LETHE_VERIFY_ROBUSTNESS_QUANTIZATION_BITS", "8,4").split(",")
    if bits.strip()
]
LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_RECORDS = int(
    os.environ.get("LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_RECORDS", "32")
)
LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_ITEMS = int(os.environ.get("LETHE_VERIFY_ROBUSTNESS_MAX_EVAL_ITEMS", "40"))
LETHE_VERIFY_ROBUSTNESS_SEED = int(os.environ.get("LETHE_VERIFY_ROBUSTNESS_SEED", "0"))
# Output suppression's measured effect in the report (docs/suppression.md): a guard probe passes
# when at least this share of the subject's probes is blocked and at most this share of benign
# prompts about other people is wrongly blocked.
LETHE_GUARD_MIN_BLOCK_RATE = float(os.environ.get("LETHE_GUARD_MIN_BLOCK_RATE", "1.0"))
# Models the generate endpoint keeps loaded per process (least recently used dropped first).
LETHE_GENERATE_MODELS_CACHED = int(os.environ.get("LETHE_GENERATE_MODELS_CACHED", "2"))
LETHE_GUARD_MAX_FALSE_POSITIVE_RATE = float(os.environ.get("LETHE_GUARD_MAX_FALSE_POSITIVE_RATE", "0.05"))
# Liveness per job (docs/jobs.md): the process executing a job writes the job's own heartbeat
# this often; a running job whose heartbeat is older than LETHE_JOB_HEARTBEAT_STALE_SECONDS has
# lost its process and is queued again, whatever its worker's heartbeat says.
LETHE_JOB_HEARTBEAT_SECONDS = float(os.environ.get("LETHE_JOB_HEARTBEAT_SECONDS", "5"))
LETHE_JOB_HEARTBEAT_STALE_SECONDS = float(os.environ.get("LETHE_JOB_HEARTBEAT_STALE_SECONDS", "30"))
# The watchdog: a live job with no progress for this long is shown as stalled (longer while its
# phase is "loading model": a 7B checkpoint takes minutes to read before the first step).
LETHE_JOB_STALL_SECONDS = float(os.environ.get("LETHE_JOB_STALL_SECONDS", "300"))
LETHE_JOB_LOAD_STALL_SECONDS = float(os.environ.get("LETHE_JOB_LOAD_STALL_SECONDS", "1200"))
# Intra-op threads torch uses for model work on the CPU (0: torch's default, one per core).
LETHE_JOB_TORCH_THREADS = int(os.environ.get("LETHE_JOB_TORCH_THREADS", "0"))

# --- Extension tables ------------------------------------------------------------------------
# Where a lower layer calls what a higher one defines, it reads one of these tables of dotted
# paths (resolved with import_string, as MIDDLEWARE is): the one place that says what runs when
# (compliance/extensions.py, docs/architecture.md). Order matters: the first refusal is shown.

# Checks a request's transition waits on: check(erasure_request) returns a message, or None.
LETHE_TRANSITION_CHECKS = {
    "approve": [
        "requests_app.matching.review.review_approval_refusal",
        "unlearning_jobs.decisions.services.approval_without_decisions_refusal",
    ],
    "start_verifying": ["unlearning_jobs.jobs.services.request_jobs_unfinished_refusal"],
    "complete": [
        "unlearning_jobs.verification.services.request_verification_unfinished_refusal",
        # every failed or unmeasured verification row accepted in writing (or re-run until it passes)
        "compliance.reports.acceptance.verification_failures_unaccepted_refusal",
    ],
}
# What follows a transition inside its transaction: follow_up(erasure_request=…).
LETHE_TRANSITION_FOLLOW_UPS = {
    # the search of the training data starts when there is something indexed to search
    "start_locating": ["requests_app.matching.services.locate_on_start"],
    # the re-ingestion guard flags the person's records in versions already indexed
    "approve": ["requests_app.matching.review.request_approved_guard"],
}
# Job kinds: the runner (runs in the gpu worker) and the validator of a job's parameters.
LETHE_JOB_KINDS = {
    "train": {
        "run": "unlearning_jobs.deletion.services.run_train_job",
        "params": "unlearning_jobs.deletion.services.train_params_validate",
    },
    "unlearn": {
        "run": "unlearning_jobs.deletion.services.run_unlearn_job",
        "params": "unlearning_jobs.deletion.services.unlearn_params_validate",
    },
    "import": {
        "run": "unlearning_jobs.finetuning.services.run_import_job",
        "params": "unlearning_jobs.finetuning.services.import_params_validate",
    },
    "finetune": {
        "run": "unlearning_jobs.finetuning.services.run_finetune_job",
        "params": "unlearning_jobs.finetuning.services.finetune_params_validate",
    },
    "verify": {
        "run": "unlearning_jobs.verification.runner.run_verify_job",
        "params": "unlearning_jobs.verification.services.verify_params_validate",
    },
    "guard": {
        "run": "unlearning_jobs.suppression.guard.run_guard_job",
        "params": "unlearning_jobs.suppression.guard.guard_job_params_validate",
    },
    "guard_probe": {
        "run": "unlearning_jobs.suppression.guard.run_guard_probe_job",
        "params": "unlearning_jobs.suppression.guard.guard_probe_job_params_validate",
    },
    "latent_delete": {
        "run": "unlearning_jobs.suppression.latent.run_latent_delete_job",
        "params": "unlearning_jobs.suppression.latent.latent_job_params_validate",
    },
    "latent_probe": {
        "run": "unlearning_jobs.suppression.latent.run_latent_probe_job",
        "params": "unlearning_jobs.suppression.latent.latent_job_params_validate",
    },
    # the API's data-set registration, on the cpu queue (it reads the file, nothing of a model)
    "register_dataset": {
        "run": "unlearning_jobs.dataset_jobs.services.run_register_dataset_job",
        "params": "unlearning_jobs.dataset_jobs.services.register_params_validate",
    },
}
# Called with the job inside the transaction that marks any job succeeded (the jobs they create
# exist exactly when the success does): verification of an unlearning job, probes of a guard.
LETHE_JOB_SUCCEEDED_HOOKS = [
    "unlearning_jobs.verification.services.verification_jobs_for_unlearning_job",
    "unlearning_jobs.suppression.guard.guard_probe_jobs_for_guard_job",
    # the demo story moves on after the demo model's training and each job of its requests
    "compliance.demo_story.demo_story_on_job_succeeded",
]
# The parts of a request's audit report that other apps hold: section → providers, in order.
LETHE_REPORT_SECTION_PROVIDERS = {
    "records": ["requests_app.matching.review.report_records_section"],
    "decisions": ["unlearning_jobs.decisions.services.decisions_for_report"],
    "jobs": ["unlearning_jobs.jobs.services.jobs_for_report"],
    "verification": [
        "unlearning_jobs.verification.services.verification_for_report",
        "unlearning_jobs.suppression.guard.guard_measurements_for_report",
    ],
    "recipients": ["unlearning_jobs.suppression.services.recipients_for_report"],
}
# For list pages: read what a section's providers need for many requests at once.
LETHE_REPORT_SECTION_PREFETCHERS = {
    "jobs": ["unlearning_jobs.jobs.services.jobs_prefetch_for_report"],
}
