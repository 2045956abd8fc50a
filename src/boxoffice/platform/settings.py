"""Settings: every knob is a ``BOXOFFICE_*`` environment variable, never an edit to the code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - the placeholder production refuses


class Settings(BaseSettings):
    """What one boxoffice process runs with. ``production`` refuses the development defaults."""

    model_config = SettingsConfigDict(env_prefix="BOXOFFICE_", extra="ignore", frozen=True)

    mode: Literal["dev", "production"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    log_level: str = "INFO"
    log_json: bool = True
    otel_endpoint: str | None = None
    """An OTLP/HTTP collector for traces (e.g. http://otel-collector:4318); unset: no span leaves the process."""
    max_body_bytes: int = 1_048_576
    http_keep_alive_seconds: int = Field(default=65, ge=1)
    """How long the server keeps an idle connection open. Longer than its callers keep one idle (httpx 5 s,
    the gateway 4 s, load balancers typically 60 s): a server that closes first races the caller's next
    request on that connection, which then fails with a read error (uvicorn's own default, 5 s, did)."""
    sqlite_inline: bool = True
    """Run SQLite statements on the event loop's thread (``run --processes`` turns it off)."""
    sqlite_shared: bool = False
    """Other processes write the same SQLite files (set by ``run`` for its processes with ``api_processes``
    above 1 or ``workers_apart``): a writer waits for their locks without blocking its event loop, and relays
    notice their commits within milliseconds."""
    api_processes: int = Field(default=1, ge=0, le=64)
    """``boxoffice run``: 1 runs everything in one process; N > 1 serves the whole API from N processes on
    the one port (SO_REUSEPORT) and runs every worker in one more, over the same SQLite files; 0: one API
    process per core."""
    workers_apart: bool = False
    """``boxoffice run`` with one API process: the workers (relays, consumers, ticket issuing, e-mail) run in a
    process of their own, as with ``api_processes`` above 1. On 2 cores the work a sale leaves behind then no
    longer takes turns with the buyers' requests on one event loop: tickets keep pace with the sale at any
    load, while one process sells more per second under heavy load by leaving that work for later."""
    worker_nice: int = Field(default=0, ge=0, le=19)
    """``boxoffice worker`` lowers its CPU priority by this much (``nice``): where workers share cores with API
    processes (``run --api-processes N``), requests come first and the workers catch up in the time left
    over. The clickstream at 25,000 events/s offered: collector p99 137 against 217 ms with 10, the same
    events stored per second end to end; it also delays what workers do during a sale (tickets, mails)."""
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    """The HTTP servers' event loop. uvloop runs libuv, which accepts ONE new connection per turn
    of the loop; a busy turn of boxoffice's one process takes 20 to 50 ms, so when a sale opens and dozens of
    buyers connect at once the last of them waited 1 to 3 s in the kernel's queue before their first request
    was read (64 buyers: hold p99 0.7 to 2.4 s, all of it in the first wave). asyncio's loop accepts every
    waiting connection in the turn it sees them. Measured side by side on a 2,000-ticket sale, asyncio's loop
    was no slower."""
    demo: bool = True
    """Seed demo events, stations and trains when the catalog is empty (BOXOFFICE_DEMO=0 starts empty)."""

    idempotency_ttl_hours: float = 24.0
    """How long an ``Idempotency-Key``'s answer is kept for replays; purged within ten minutes after."""

    services_base_port: int = 8100
    """``run --processes``: the first service's port; the others follow in the composition root's order."""

    # Event bus.
    bus: Literal["sql", "kafka"] = "sql"
    bus_database_url: str | None = None
    bus_partitions: int = 8
    bus_poll_interval_seconds: float = 0.2
    bus_retention_hours: float = 168.0
    """How long the sql bus keeps events (0 keeps them for ever)."""
    bus_max_attempts: int = Field(default=5, ge=1)
    """Attempts a consumer group makes at one event before it writes it to its dead letters and moves on."""
    bus_retry_backoff_seconds: float = Field(default=1.0, gt=0)
    """The wait after a consumer's first failed attempt; it doubles with each failure in a row (up to 30 s)."""
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_rebalance_timeout_ms: int = 10_000
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    """How the producer compresses record batches (every topic; the clickstream's JSON shrinks about 5x with
    lz4, for little CPU). Consumers read any of them; the broker must accept the codec (Kafka does, Tansu too)."""

    # Mail.
    mail_backend: Literal["dev", "smtp"] = "dev"
    mail_from: str = "boxoffice <no-reply@boxoffice.localhost>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Object store: a folder under the data dir (fs) or the S3 API (AWS S3, MinIO, moto).
    object_store: Literal["fs", "s3"] = "fs"
    object_store_dir: Path | None = None
    """The fs backend's root (default: <data_dir>/objects); one folder per bucket inside."""
    s3_bucket: str = "boxoffice"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = False
    """Create the bucket at start-up when missing (dev and tests; production buckets come from terraform)."""

    # Service clients.
    client_timeout_seconds: float = 5.0
    client_retries: int = 2
    client_breaker_failures: int = 5
    client_breaker_reset_seconds: float = 10.0

    @model_validator(mode="after")
    def _refuse_development_defaults_in_production(self) -> Settings:
        if self.mode != "production":
            return self
        problems = []
        if self.secret_key.get_secret_value() == DEFAULT_SECRET or len(self.secret_key.get_secret_value()) < 32:
            problems.append("BOXOFFICE_SECRET_KEY must be set to a random value of at least 32 characters")
        if self.mail_backend == "dev":
            problems.append("BOXOFFICE_MAIL_BACKEND=dev (the dev mailbox) is not allowed in production")
        if problems:
            raise ValueError("refusing to start in production mode: " + "; ".join(problems))
        return self

    def sqlite_url(self, name: str) -> str:
        """The default database of ``name``: a SQLite file in the data dir."""
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{name}.db').resolve()}"

    def bus_url(self) -> str:
        return self.bus_database_url or self.sqlite_url("bus")

    @property
    def secret(self) -> bytes:
        return self.secret_key.get_secret_value().encode()


class ServiceSettings(BaseSettings):
    """What one service runs with: ``BOXOFFICE_<SERVICE>_*``. Each service subclasses it with its prefix.

        class BookingSettings(ServiceSettings):
            model_config = service_config("booking")
            hold_ttl_seconds: int = 600
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str | None = None
    """``BOXOFFICE_<SERVICE>_DATABASE_URL``: e.g. postgresql+asyncpg://...; unset: SQLite in the data dir."""
    url: str | None = None
    """``BOXOFFICE_<SERVICE>_URL``: where the service answers in distributed mode; unset: in this process."""

    def check_production(self) -> list[str]:
        """What this service refuses in production mode (one reason per problem); nothing by default."""
        return []


def service_config(name: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"BOXOFFICE_{name.upper()}_", extra="ignore", frozen=True)


def location(name: str) -> ServiceSettings:
    """Where another service lives (``BOXOFFICE_<NAME>_URL``), read without knowing its settings class."""
    return ServiceSettings(_env_prefix=f"BOXOFFICE_{name.upper()}_")
