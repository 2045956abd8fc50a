"""The account page (name, e-mail, change password, log out everywhere) and "forgot password" by e-mail code."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD, create_user, log_in
from tests.harness.server import Server

NEW_PASSWORD = "a-fresh-ticket-passphrase"


def reset_code_from_the_dev_mailbox(page: Page) -> str:
    """Read the code the way a developer would: the dev mailbox the reset page links to."""
    url = page.get_by_test_id("dev-mailbox-link").get_attribute("href")
    assert url
    mailbox = page.context.new_page()
    mailbox.goto(url)
    mail = mailbox.get_by_test_id("mail").filter(has_text="Reset your boxoffice password").first
    expect(mail).to_be_visible()
    match = re.search(r"\b(\d{6})\b", mail.get_by_test_id("mail-text").inner_text())
    mailbox.close()
    assert match
    return match.group(1)


def test_forgot_password_sets_a_new_one_by_e_mail_code(page: Page, server: Server) -> None:
    create_user(server, "forgetful@example.com", name="Fay Forgetful")
    page.goto("/account/login")
    page.get_by_test_id("forgot-link").click()
    expect(page.locator("body")).to_have_attribute("data-page", "forgot")
    page.get_by_test_id("forgot-email").fill("forgetful@example.com")
    page.get_by_test_id("forgot-submit").click()
    expect(page.locator("body")).to_have_attribute("data-page", "reset")
    expect(page.get_by_test_id("code-sent")).to_contain_text("forgetful@example.com")
    for _ in range(50):  # the mail sender runs after the commit
        if "Reset" in httpx.get(f"{server.url}/api/dev/mailbox", params={"to": "forgetful@example.com"}).text:
            break
        page.wait_for_timeout(100)
    code = reset_code_from_the_dev_mailbox(page)
    # Asking again at once is throttled like the sign-up code.
    page.get_by_test_id("reset-ask-again").click()
    expect(page.get_by_test_id("forgot-email")).to_have_value("forgetful@example.com")
    page.get_by_test_id("forgot-submit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("try again in")
    page.goto("/account/reset?email=forgetful%40example.com")

    page.get_by_test_id("reset-code").fill("000000" if code != "000000" else "111111")
    page.get_by_test_id("reset-password").fill(NEW_PASSWORD)
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("wrong")
    page.get_by_test_id("reset-code").fill(code)
    page.get_by_test_id("reset-password").fill(NEW_PASSWORD)
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("password-reset")).to_be_visible()
    expect(page.get_by_test_id("account-email")).to_have_text("forgetful@example.com")

    page.get_by_test_id("nav-logout").click()
    page.goto("/account/login")
    page.get_by_test_id("login-email").fill("forgetful@example.com")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("wrong")
    log_in(page, "forgetful@example.com", NEW_PASSWORD)


def test_account_page_changes_the_password_and_logs_out_everywhere(page: Page, server: Server) -> None:
    create_user(server, "careful@example.com", name="Cary Careful")
    log_in(page, "careful@example.com")
    page.get_by_test_id("nav-user").click()
    expect(page.locator("body")).to_have_attribute("data-page", "account")
    expect(page.get_by_test_id("account-name")).to_have_text("Cary Careful")
    expect(page.get_by_test_id("account-email")).to_have_text("careful@example.com")

    page.get_by_test_id("current-password").fill("not-my-password")
    page.get_by_test_id("new-password").fill(NEW_PASSWORD)
    page.get_by_test_id("confirm-password").fill(NEW_PASSWORD)
    page.get_by_test_id("password-submit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("current password is wrong")
    page.get_by_test_id("current-password").fill(PASSWORD)
    page.get_by_test_id("new-password").fill(NEW_PASSWORD)
    page.get_by_test_id("confirm-password").fill(NEW_PASSWORD + "x")
    page.get_by_test_id("password-submit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("differ")
    page.get_by_test_id("current-password").fill(PASSWORD)
    page.get_by_test_id("new-password").fill(NEW_PASSWORD)
    page.get_by_test_id("confirm-password").fill(NEW_PASSWORD)
    page.get_by_test_id("password-submit").click()
    expect(page.get_by_test_id("password-changed")).to_be_visible()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        old = client.post("/api/auth/login", json={"email": "careful@example.com", "password": PASSWORD})
        assert old.status_code == 401
        other_device = client.post("/api/auth/login", json={"email": "careful@example.com", "password": NEW_PASSWORD})
        assert other_device.status_code == 200

    page.get_by_test_id("logout-all").click()
    expect(page.get_by_test_id("logged-out-everywhere")).to_be_visible()
    expect(page.get_by_test_id("nav-login")).to_be_visible()
    with httpx.Client(base_url=server.url, timeout=10) as client:  # the other device cannot renew its session
        renewed = client.post("/api/auth/refresh", json={"refresh_token": other_device.json()["refresh_token"]})
        assert renewed.status_code == 401
    page.goto("/account")
    expect(page.locator("body")).to_have_attribute("data-page", "login")
