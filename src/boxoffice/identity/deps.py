"""What identity runs with: its settings (``BOXOFFICE_IDENTITY_*``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

from boxoffice.platform.settings import ServiceSettings, service_config


class IdentitySettings(ServiceSettings):
    model_config = service_config("identity")

    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    otp_ttl_seconds: int = 600
    otp_max_attempts: int = 5
    otp_resend_interval_seconds: int = 60
    login_max_failures: int = 5
    login_lockout_seconds: int = 300
    admin_email: str | None = Field(
        default=None, validation_alias=AliasChoices("admin_email", "BOXOFFICE_ADMIN_EMAIL")
    )
    """With ``admin_password``: this verified admin exists after start-up (``BOXOFFICE_ADMIN_EMAIL``)."""
    admin_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("admin_password", "BOXOFFICE_ADMIN_PASSWORD")
    )

    def check_production(self) -> list[str]:
        if self.admin_password is not None and len(self.admin_password.get_secret_value()) < 10:
            return ["BOXOFFICE_ADMIN_PASSWORD is too short"]
        return []
