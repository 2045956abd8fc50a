"""What identity's HTTP API reads and answers (ARCHITECTURE.md section 5)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from boxoffice.identity.deps import LoginEmail
from boxoffice.identity.domain import (
    ChangePassword,
    LogIn,
    RegisterUser,
    ResetPassword,
    TokenPair,
    User,
    VerifyEmail,
)
from boxoffice.platform.mail import Mail
from boxoffice.platform.requests import RequestBody


class In(RequestBody):
    model_config = ConfigDict(str_max_length=4096)


class RegisterIn(In):
    email: LoginEmail
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=200)

    def command(self) -> RegisterUser:
        return RegisterUser(email=self.email, password=self.password, name=self.name)


class VerifyIn(In):
    email: LoginEmail
    code: str = Field(pattern=r"^\d{6}$", description="the 6-digit code from the e-mail")

    def command(self) -> VerifyEmail:
        return VerifyEmail(email=self.email, code=self.code)


class EmailIn(In):
    email: LoginEmail


class LoginIn(In):
    email: LoginEmail
    password: str = Field(min_length=1, max_length=1024)

    def command(self) -> LogIn:
        return LogIn(email=self.email, password=self.password)


class ResetPasswordIn(In):
    email: LoginEmail
    code: str = Field(pattern=r"^\d{6}$", description="the 6-digit code from the \"forgot password\" e-mail")
    new_password: str = Field(min_length=1, max_length=1024)

    def command(self) -> ResetPassword:
        return ResetPassword(email=self.email, code=self.code, password=self.new_password)


class ChangePasswordIn(In):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)

    def command(self) -> ChangePassword:
        return ChangePassword(current_password=self.current_password, new_password=self.new_password)


class RefreshIn(In):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    verified: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, verified=user.verified)


class MeOut(UserOut):
    roles: list[str]

    @classmethod
    def of(cls, user: User) -> MeOut:
        return cls(id=user.id, email=user.email, name=user.name, roles=list(user.roles), verified=user.verified)


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokenPairOut:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
        )


class AcceptedOut(BaseModel):
    status: str
    detail: str


class JwkOut(BaseModel):
    """An Ed25519 public key (RFC 8037)."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JwksOut(BaseModel):
    keys: list[JwkOut]


class MailOut(BaseModel):
    to: str
    subject: str
    text: str
    sent_at: datetime

    @classmethod
    def of(cls, mail: Mail) -> MailOut:
        return cls(to=mail.to, subject=mail.subject, text=mail.text, sent_at=mail.sent_at)


class MailboxOut(BaseModel):
    items: list[MailOut]
