"""Staff accounts: deactivation and password changes end every session; purging."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiban.platform.auth import BadCredentials
from kiban_testkit import PASSWORD, World


def test_deactivation_ends_sessions_and_tokens(sqlite_world: World) -> None:
    acc, now = sqlite_world.svc.accounts, sqlite_world.svc.clock.now()
    token, _ = acc.login("clerk-a", PASSWORD, "1.2.3.4", now, 5, 900)
    api = acc.issue_api_token("clerk-a", now)
    assert acc.session(token, now) and acc.session(api, now)
    acc.deactivate("clerk-a")
    assert acc.session(token, now) is None and acc.session(api, now) is None
    with pytest.raises(BadCredentials):
        acc.login("clerk-a", PASSWORD, "1.2.3.4", now, 5, 900)


def test_password_change_signs_out_everywhere(sqlite_world: World) -> None:
    acc, now = sqlite_world.svc.accounts, sqlite_world.svc.clock.now()
    token, _ = acc.login("clerk-a", PASSWORD, "1.2.3.4", now, 5, 900)
    acc.set_password("clerk-a", "a-new-long-password")
    assert acc.session(token, now) is None
    acc.login("clerk-a", "a-new-long-password", "1.2.3.4", now, 5, 900)


def test_sessions_expire_and_are_purged(sqlite_world: World) -> None:
    acc, now = sqlite_world.svc.accounts, sqlite_world.svc.clock.now()
    token, _ = acc.login("clerk-a", PASSWORD, "1.2.3.4", now, 5, 900)
    with pytest.raises(BadCredentials):
        acc.login("clerk-a", "wrong-password", "1.2.3.4", now, 5, 900)
    later = now + timedelta(hours=9)
    assert acc.session(token, later) is None
    assert acc.purge(later, 900) == 2
