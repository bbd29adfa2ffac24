"""One Settings object for API, worker and CLI; every value comes from `FUPIN_*` variables."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUPIN_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        "development",
        description="Production hides /docs from anonymous callers; outside development and test, API, worker and "
        "`fupin run` refuse default or short (< 32 bytes) keys.",
    )
    database_url: str = Field(
        "",
        description="Owner connection (runs migrations), e.g. postgresql+asyncpg://root@127.0.0.1:5432/fupin. "
        "Empty: `make run` starts the embedded PostgreSQL in .data/pg.",
    )
    app_database_url: str = Field(
        "",
        description="Connection used by API and worker; must be a role that does not own the tables so that "
        "row-level security applies. Empty: database_url with the user replaced by db_app_role.",
    )
    db_app_role: str = Field("fupin_app", description="Non-owner login role the migrations create and grant to.")
    db_app_password: str = Field("", description="Password set on db_app_role by the migrations (empty: none).")
    db_pool_size: int = Field(10, description="Connections per process in the SQLAlchemy pool.")
    db_pool_timeout: float = Field(5.0, description="Seconds to wait for a pooled connection before answering 503.")
    db_statement_timeout_ms: int = Field(30_000, description="Per-statement timeout for API requests.")
    distributed: bool = Field(
        False, description="The database is a Citus coordinator: `fupin migrate` also distributes the tables by "
        "county (fupin.distribution).",
    )
    redis_url: str = Field(
        "", description="Redis for the arq queue, e.g. redis://127.0.0.1:6379/0. Empty: embedded Redis in .data/redis."
    )
    queue_name: str = Field("fupin:queue", description="arq queue name (tests use a private one).")
    jwt_secret: str = Field("change-me-in-production-0123456789abcdef", description="HS256 key for access tokens.")
    jwt_ttl_seconds: int = Field(900, description="Access-token lifetime; refresh it with the refresh token.")
    refresh_ttl_seconds: int = Field(
        14 * 24 * 3600,
        description="A refresh token expires this long after it was issued (each refresh issues a new one), "
        "so a session idle this long must log in again.",
    )
    refresh_session_max_seconds: int = Field(
        30 * 24 * 3600,
        description="However often it is refreshed, a login session ends this long after the login.",
    )
    token_cache_seconds: float = Field(
        5.0,
        description="How long an API process trusts a user's cached token version, role, area and active flag "
        "instead of reading the user row per request: a deactivation or password change made through another "
        "process refuses the old tokens within this delay (the process that made it, at once). 0: read every time.",
    )
    login_max_failures: int = Field(5, description="Failed logins before a user is locked out for login_lockout_seconds.")
    login_lockout_seconds: int = Field(300, description="Lockout after too many failed logins.")
    login_rate_per_user: int = Field(
        10, description="Login attempts per username per login_rate_window_seconds (429 beyond), before the "
        "password is checked; independent of the lockout after login_max_failures wrong passwords.",
    )
    login_rate_per_address: int = Field(
        30, description="Login attempts per client address per login_rate_window_seconds (429 beyond).",
    )
    login_rate_window_seconds: int = Field(60, description="Window of the login throttles (fixed, aligned).")
    bank_rate_per_client: int = Field(
        1200, description="Requests per bank client per bank_rate_window_seconds to /bank/* routes (429 beyond); "
        "a batch of up to 1,000 events is one request.",
    )
    bank_rate_window_seconds: int = Field(60, description="Window of the bank throttle (fixed, aligned).")
    bank_failures_per_address: int = Field(
        20, description="Failed bank signatures (bad or missing signature, unknown client, stale timestamp) per "
        "client address per bank_failure_window_seconds; beyond, that address's signed requests answer 429 "
        "before any signature is checked.",
    )
    bank_failures_per_client: int = Field(
        60, description="Failed bank signatures per claimed client id per bank_failure_window_seconds, from any "
        "address; beyond, requests naming that client answer 429 until the window ends (higher than the "
        "per-address limit, so that one address cannot lock a bank out by itself).",
    )
    bank_failure_window_seconds: int = Field(300, description="Window of the failed-signature throttles (fixed, aligned).")
    throttle_key_prefix: str = Field("fupin:throttle", description="Prefix of the throttle counters in Redis.")
    throttle_redis_timeout_seconds: float = Field(
        0.25, description="How long a throttle check waits for Redis. Unreachable or slow Redis: the request is "
        "let through (fail open, logged) and Redis is not asked again for throttle_retry_seconds.",
    )
    throttle_retry_seconds: float = Field(5.0, description="Pause before asking an unreachable Redis again.")
    bank_signature_window_seconds: int = Field(300, description="Accepted clock skew for signed bank posts (±).")
    bank_credentials_cache_seconds: float = Field(
        5.0,
        description="How long an API process trusts a bank client's cached secrets instead of reading them per "
        "signed request: a secret's end or a client's deactivation made through another process takes effect "
        "within this delay (a new secret signs at once: a signature the cache does not match is checked against "
        "the database before it is refused). 0: read every time.",
    )
    max_body_bytes: int = Field(5 * 1024 * 1024, description="Largest request body accepted (413 beyond).")
    bank_file_max_bytes: int = Field(
        256 * 1024 * 1024, description="Largest daily file a bank may upload to /bank/loan-event-files (413 beyond)."
    )
    bank_file_max_lines: int = Field(1_000_000, description="Most lines in one uploaded daily file (422 beyond).")
    job_timeout_seconds: int = Field(600, description="arq job timeout.")
    job_stale_seconds: int = Field(
        120,
        description="A queued run not started after this long is re-enqueued; a running run whose worker died "
        "is re-delivered once it started this long ago.",
    )
    sweeper_interval_seconds: int = Field(
        30,
        description="How often the sweeper looks for lost, abandoned or missed runs (a divisor of 60 s or of "
        "60 min). A run whose worker was killed is re-delivered within job_stale_seconds + this.",
    )
    worker_area: str = Field(
        "",
        description="Confine a worker to one area code: it sweeps and executes only runs inside that area and "
        "does not tick the platform-wide schedule. Empty: every run, and the schedule.",
    )
    audit_checkpoint_key: str = Field(
        "dev-audit-checkpoint-key-change-me-0123456789",
        description="HMAC key signing audit chain checkpoints. Keep it outside the database (a secret store): "
        "whoever holds it could forge checkpoints. Changing it makes older checkpoints unverifiable.",
    )
    bank_secret_key: str = Field(
        "dev-bank-secret-key-change-me-0123456789abcdef",
        description="Encrypts the banks' HMAC secrets in the database (AES-256-GCM). Keep it outside the database "
        "(a secret store); changing it makes the stored secrets unreadable, so clients then need new secrets.",
    )
    audit_seal_interval_seconds: int = Field(
        5, description="How often the worker seals new audit rows into their county chains (seal lag bound)."
    )
    idempotency_key_hours: int = Field(
        168, ge=1,
        description="How long a write's Idempotency-Key and its stored answer are kept (7 days: phones that "
        "sync in the evening and banks retry over days). A key reused after that runs the request again.",
    )
    storage_backend: Literal["fs", "s3"] = Field(
        "fs", description="Where document and photo bytes are kept: fs (files under document_dir) or s3 "
        "(an S3-compatible bucket: s3_endpoint_url, s3_bucket, s3_access_key, s3_secret_key).",
    )
    document_dir: str = Field("", description="fs storage root. Empty: <data_dir>/documents.")
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint, e.g. https://oss-cn-guiyang.aliyuncs.com "
                                 "or http://minio:9000. Empty: AWS.")
    s3_bucket: str = Field("fupin-documents", description="Bucket holding the documents.")
    s3_prefix: str = Field("", description="Key prefix inside the bucket (e.g. documents/).")
    s3_access_key: str = Field("", description="S3 access key id (empty: the SDK's default credential chain).")
    s3_secret_key: str = Field("", description="S3 secret access key.")
    s3_region: str = Field("us-east-1", description="S3 region name.")
    document_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Largest document or photo accepted (413 document.too_large beyond).",
    )
    thumbnail_px: int = Field(320, ge=32, le=2048, description="Longest side of an image's thumbnail.")
    evidence_max_km: Decimal = Field(
        Decimal("3"), gt=0,
        description="A visit photo whose EXIF location is farther than this from the village is flagged for the "
        "township (not refused).",
    )
    timezone: str = Field("Asia/Shanghai", description="Business day and quarter boundaries.")
    api_host: str = Field("127.0.0.1", description="`make run` API bind address.")
    api_port: int = Field(8000, description="`make run` API port.")
    data_dir: str = Field(".data", description="Where embedded PostgreSQL and Redis keep their files.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written to the logs (API, worker)."
    )
    log_format: Literal["json", "console"] = Field(
        "json", description="json: one JSON object per line (production); console: key=value lines for a terminal."
    )
    metrics_token: str = Field(
        "",
        description="When set, /metrics (API and worker) answers only requests with `Authorization: Bearer <token>`. "
        "Empty: open; restrict it with a NetworkPolicy instead.",
    )
    worker_metrics_port: int = Field(
        0, description="Port on which the worker serves its own /metrics (0: off)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS), e.g. FUPIN_CORS_ORIGINS='[\"https://fupin.example.gov.cn\"]'. "
        "Empty: no cross-origin browser access.",
    )
    fault_sleep_seconds: float = Field(
        0.0, description="Test fault hook: the worker sleeps this long inside a job's transaction before committing."
    )


DEV_ENVIRONMENTS = ("development", "test")
MIN_KEY_BYTES = 32
# Keys whose built-in defaults are public (this file, the README): anyone could sign tokens, forge
# audit checkpoints or read the banks' secrets with them.
SECRET_KEYS = ("jwt_secret", "bank_secret_key", "audit_checkpoint_key")


class InsecureSettings(RuntimeError):
    """The process refuses to start: a key is the public default or too short outside development/test."""


def insecure_keys(settings: Settings) -> list[str]:
    """Why each secret key would be unsafe in production, naming its variable; empty when all are fine."""
    problems = []
    for name in SECRET_KEYS:
        value: str = getattr(settings, name)
        var = f"FUPIN_{name.upper()}"
        if value == Settings.model_fields[name].default:
            problems.append(f"{var} is the built-in default, which is published in the source and the README")
        elif len(value.encode()) < MIN_KEY_BYTES:
            problems.append(f"{var} is {len(value.encode())} bytes long; at least {MIN_KEY_BYTES} are required")
    return problems


def require_secure(settings: Settings, *, process: str) -> None:
    """Refuse to start outside development/test while any key is a default or short, saying which and why."""
    if settings.environment in DEV_ENVIRONMENTS:
        return
    problems = insecure_keys(settings)
    if problems:
        raise InsecureSettings(
            f"{process} refuses to start with FUPIN_ENVIRONMENT={settings.environment}: " + "; ".join(problems)
            + f". Set each to a random value of at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)."
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
