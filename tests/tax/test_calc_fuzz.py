"""Whatever JSON arrives, the calculator either answers or refuses with a field named: never
another exception (which would be a 500 over HTTP and a traceback on the command line)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_calc_interfaces import EXAMPLE

from kiban.core.errors import ValidationFailed
from kiban.standard.kit.tax_checks import KASUYA
from kiban.tax.calculator import calculate_one, calculator_output
from kiban.tax.model import MunicipalOptions
from kiban.tax.requests import parse_calculation_request

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**13, 10**13) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(data)
    target = copied
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copied


def answers_or_names_a_field(run: Any, body: Any) -> None:
    try:
        result = run(body)
    except ValidationFailed as exc:
        assert exc.errors and all(e.field for e in exc.errors)
    else:
        assert result["total"] >= 0


CONTRACT_PATHS = paths(EXAMPLE)
STANDARD_PATHS = paths(KASUYA)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, len(CONTRACT_PATHS) - 1), value=json_values)
def test_calculator_contract_never_fails_otherwise(index: int, value: Any) -> None:
    answers_or_names_a_field(calculator_output, replaced(EXAMPLE, CONTRACT_PATHS[index], value))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, len(STANDARD_PATHS) - 1), value=json_values)
def test_standard_request_never_fails_otherwise(index: int, value: Any) -> None:
    def run(body: Any) -> Any:
        return calculate_one(parse_calculation_request(body), MunicipalOptions())
    answers_or_names_a_field(run, replaced(KASUYA, STANDARD_PATHS[index], value))


@settings(max_examples=50, deadline=None)
@given(body=json_values)
def test_any_json_at_all(body: Any) -> None:
    answers_or_names_a_field(calculator_output, body)
