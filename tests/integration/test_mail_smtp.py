"""The SMTP mail backend against a real SMTP server (aiosmtpd), end to end through identity."""

from __future__ import annotations

import re
from pathlib import Path

from boxoffice.platform.mail import SmtpMailer
from boxoffice.platform.settings import Settings
from tests.harness.app import running, wait_for
from tests.harness.smtp import Inbox


async def test_smtp_mailer_delivers(smtp: Inbox) -> None:
    mailer = SmtpMailer(Settings(mail_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port))
    await mailer.send("fan@example.com", "Hello", "Body text")
    [message] = smtp.to("fan@example.com")
    assert message["Subject"] == "Hello"
    assert message.get_body(("plain",)).get_content().strip() == "Body text"


async def test_signup_code_arrives_over_smtp(tmp_path: Path, smtp: Inbox) -> None:
    settings = Settings(data_dir=tmp_path, mail_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port)
    async with running(settings, ["identity"]) as app:
        response = await app.client.post(
            "/api/auth/register", json={"email": "fan@example.com", "password": "a-long-ticket-password", "name": "Fan"}
        )
        assert response.status_code == 201

        async def delivered() -> bool:
            return bool(smtp.to("fan@example.com"))

        await wait_for(delivered)
        text = smtp.to("fan@example.com")[0].get_body(("plain",)).get_content()
        code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
        verify = await app.client.post("/api/auth/verify", json={"email": "fan@example.com", "code": code})
        assert verify.status_code == 200
        # The dev mailbox is not there with the SMTP backend.
        assert (await app.client.get("/api/dev/mailbox")).status_code == 404


async def test_mail_waits_in_the_queue_while_smtp_is_down(tmp_path: Path, smtp: Inbox) -> None:
    settings = Settings(
        data_dir=tmp_path, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=1, smtp_timeout_seconds=1
    )
    async with running(settings, ["identity"]) as app:
        await app.client.post(
            "/api/auth/register", json={"email": "fan@example.com", "password": "a-long-ticket-password", "name": "Fan"}
        )
        identity = app.service("identity")
        from boxoffice.identity import store

        async with identity.db.read() as conn:
            assert len(await store.pending_mail(conn, 10)) == 1
        # The server comes back (the mailer now points at it): the queued code goes out.
        identity.mailer = SmtpMailer(Settings(mail_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port))

        async def delivered() -> bool:
            return bool(smtp.to("fan@example.com"))

        await wait_for(delivered, timeout=20)
