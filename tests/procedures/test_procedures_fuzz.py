"""Whatever a resident's client sends, submission answers without a server error, every
refusal is problem+json, and nothing invalid is queued."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiban.procedures.catalog import load_catalog
from kiban.procedures.service import canonical_payload
from kiban_testkit import LG_A

from .procedures_kit import Env

JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=6)


def test_submission_never_fails_with_a_server_error(lite: Env) -> None:
    lite.login()
    procedures = sorted(load_catalog())

    @given(data=st.data())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: st.DataObject) -> None:
        proc = data.draw(st.sampled_from(procedures))
        fields = list(load_catalog()[proc].form_schema["properties"])
        form = data.draw(st.dictionaries(st.sampled_from([*fields, "extra"]), JSONISH, max_size=5))
        payload = canonical_payload(LG_A, proc, form)
        signature = data.draw(st.sampled_from(["good", "junk", ""]))
        sent = lite.sign(payload) if signature == "good" else \
            base64.b64encode(b"junk").decode() if signature == "junk" else ""
        response = lite.client.post("/portal/api/procedures/applications",
                                    json={"payload": base64.b64encode(payload).decode(), "signature": sent})
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json().get("draft_id")  # the input is kept

    check()
