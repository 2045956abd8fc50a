"""What identity runs with: its settings (``BOXOFFICE_IDENTITY_*``) and the dependencies of its handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AliasChoices, EmailStr, Field, SecretStr, TypeAdapter, ValidationError, field_validator

from boxoffice.identity.keys import KeyRingHolder
from boxoffice.platform.db import Database
from boxoffice.platform.mail import Mailer
from boxoffice.platform.settings import ServiceSettings, service_config

LoginEmail = Annotated[EmailStr, Field(max_length=320)]
"""An e-mail address as sign-up and login accept it (the admin's from settings is checked the same way)."""
_LOGIN_EMAIL: TypeAdapter[str] = TypeAdapter(LoginEmail)


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

    @field_validator("admin_email")
    @classmethod
    def _login_accepts(cls, value: str | None) -> str | None:
        """An admin whose address login refuses could never log in: refuse to start instead."""
        if value is None:
            return None
        try:
            _LOGIN_EMAIL.validate_python(value)
        except ValidationError as refused:
            reason = refused.errors()[0]["msg"].removeprefix("value is not a valid email address: ")
            raise ValueError(f"BOXOFFICE_ADMIN_EMAIL={value!r} is not an address login accepts: {reason}") from None
        return value

    def check_production(self) -> list[str]:
        if self.admin_password is not None and len(self.admin_password.get_secret_value()) < 10:
            return ["BOXOFFICE_ADMIN_PASSWORD is too short"]
        return []


@dataclass(frozen=True, slots=True)
class IdentityDeps:
    """Everything identity's handlers and routes may touch."""

    db: Database
    config: IdentitySettings
    secret: bytes
    """The process secret: keys the one-time code hashes and encrypts the signing keys at rest."""
    now: Callable[[], datetime]
    mailer: Mailer
    keys: KeyRingHolder
    mail_signal: asyncio.Event
    """Set after a commit that queued mail: wakes the mail sender instead of waiting for its next tick."""
