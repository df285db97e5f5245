"""Engine options: no pre-ping round trip per checkout on PostgreSQL; recycled instead."""

from __future__ import annotations

from kiban.platform.db import make_engine


def test_postgres_engine_does_not_ping_on_checkout() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects
    try:
        assert engine.pool._pre_ping is False  # type: ignore[attr-defined]
        assert engine.pool._recycle == 1800  # type: ignore[attr-defined]
        assert engine.hide_parameters
    finally:
        engine.dispose()
