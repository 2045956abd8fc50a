"""Settings: every knob is a ``BOXOFFICE_*`` environment variable, never an edit to the code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - the placeholder production refuses

SERVICES = ("identity", "catalog", "booking", "payments", "tickets", "analytics", "tracking", "music", "web")


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
    max_body_bytes: int = 1_048_576
    sqlite_inline: bool = True
    """Run SQLite statements on the event loop's thread (one process only; ``run --processes`` turns it off)."""
    demo: bool = True
    """Seed demo events, stations and trains when the catalog is empty (BOXOFFICE_DEMO=0 starts empty)."""

    # Databases: SQLite per service under data_dir unless a URL is given (postgresql+asyncpg://...).
    identity_database_url: str | None = None
    catalog_database_url: str | None = None
    booking_database_url: str | None = None
    payments_database_url: str | None = None
    tickets_database_url: str | None = None
    analytics_database_url: str | None = None
    tracking_database_url: str | None = None
    music_database_url: str | None = None
    web_database_url: str | None = None

    # Where each service answers in distributed mode; unset means "in this process".
    identity_url: str | None = None
    catalog_url: str | None = None
    booking_url: str | None = None
    payments_url: str | None = None
    tickets_url: str | None = None
    analytics_url: str | None = None
    tracking_url: str | None = None
    music_url: str | None = None
    web_url: str | None = None
    services_base_port: int = 8100

    # Event bus.
    bus: Literal["sql", "kafka"] = "sql"
    bus_database_url: str | None = None
    bus_partitions: int = 8
    bus_poll_interval_seconds: float = 0.2
    bus_retention_hours: float = 168.0
    """How long the sql bus keeps events (0 keeps them for ever)."""
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_rebalance_timeout_ms: int = 10_000

    # Mail.
    mail_backend: Literal["dev", "smtp"] = "dev"
    mail_from: str = "boxoffice <no-reply@boxoffice.localhost>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Identity.
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    identity_access_token_ttl_seconds: int = 900
    identity_refresh_token_ttl_seconds: int = 30 * 24 * 3600
    identity_otp_ttl_seconds: int = 600
    identity_otp_max_attempts: int = 5
    identity_otp_resend_interval_seconds: int = 60
    identity_login_max_failures: int = 5
    identity_login_lockout_seconds: int = 300

    # Booking.
    booking_hold_ttl_seconds: int = 600
    booking_max_tickets_per_event: int = 10
    booking_max_active_holds: int = 3
    booking_sweep_interval_seconds: float = 1.0

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

    # Tickets.
    tickets_max_upload_bytes: int = 5 * 1024 * 1024
    tickets_pdf_batch: int = 20
    tickets_pdf_processes: int = 1

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
        if self.admin_password is not None and len(self.admin_password.get_secret_value()) < 10:
            problems.append("BOXOFFICE_ADMIN_PASSWORD is too short")
        if problems:
            raise ValueError("refusing to start in production mode: " + "; ".join(problems))
        return self

    def database_url(self, service: str) -> str:
        url: str | None = getattr(self, f"{service}_database_url")
        if url:
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def bus_url(self) -> str:
        return self.bus_database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'bus.db').resolve()}"

    def service_url(self, service: str) -> str | None:
        url: str | None = getattr(self, f"{service}_url")
        return url

    @property
    def secret(self) -> bytes:
        return self.secret_key.get_secret_value().encode()
