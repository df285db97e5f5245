"""Fixtures for the whole suite live in kiban_testkit, so test modules can import its helpers
by a name that no other conftest shadows."""

from kiban_testkit import (  # noqa: F401 - fixtures are found by name
    backend,
    clock,
    pg_backend,
    pg_world,
    sqlite_backend,
    sqlite_world,
    world,
)
