"""A setting that cannot work stops ``boxoffice run`` at once with a message that says what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from boxoffice.identity.deps import IdentitySettings


@pytest.mark.parametrize("address", ["admin@boxoffice.local", "admin"])
def test_an_admin_address_login_refuses_stops_start_up(tmp_path: Path, address: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env |= {
        "BOXOFFICE_DATA_DIR": str(tmp_path),
        "BOXOFFICE_ADMIN_EMAIL": address,
        "BOXOFFICE_ADMIN_PASSWORD": "a-long-admin-password",
    }
    done = subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"boxoffice: invalid setting: BOXOFFICE_ADMIN_EMAIL={address!r} is not an address login accepts" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_the_admin_address_is_checked_as_login_checks_it() -> None:
    assert IdentitySettings(admin_email="Admin@Example.com").admin_email == "Admin@Example.com"  # login lowers it
    with pytest.raises(ValueError, match="not an address login accepts"):
        IdentitySettings(admin_email="admin@localhost")
