"""Fixtures of the identity tests (found by name)."""

from identity_world import id_world, id_world_any  # noqa: F401
