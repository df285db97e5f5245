"""The conformance kit: black-box checks of the standard HTTP API, against any implementation.

Run it with `kiban conformance run --target URL --token TOKEN` or, without Kiban's server
installed, `python -m kiban.standard.kit --target URL --token TOKEN`. It needs httpx, PyYAML
and jsonschema only.
"""
