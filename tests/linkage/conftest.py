"""One test CA for the linkage tests (an RSA root is slow to make): the hubs' member and hub
certificates all come from it unless a test sets KIBAN_TEST_CA_DIR itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_test_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("linkage-ca")
    before = os.environ.get("KIBAN_TEST_CA_DIR")
    os.environ["KIBAN_TEST_CA_DIR"] = str(directory)
    yield directory
    if before is None:
        os.environ.pop("KIBAN_TEST_CA_DIR", None)
    else:
        os.environ["KIBAN_TEST_CA_DIR"] = before
