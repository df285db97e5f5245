"""`python -m kiban.standard.kit --target URL --token TOKEN`: the kit without Kiban's server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiban.standard.kit import report as report_module
from kiban.standard.kit.runner import SetupFailed, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiban.standard.kit",
                                     description="Black-box conformance checks of the standard API.")
    parser.add_argument("--target", required=True, help="base URL, e.g. https://vendor.example")
    parser.add_argument("--token", required=True,
                        help="a platform administrator's API token (creates test municipalities)")
    parser.add_argument("--domain", action="append", choices=("registry", "tax"),
                        help="repeat for several; default both")
    parser.add_argument("--deviations-of", help="show this municipality's recorded deviations")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--html", type=Path, help="also write the report as an HTML page here")
    args = parser.parse_args(argv)
    try:
        report = run(args.target, args.token, args.domain or ("registry", "tax"),
                     deviations_of=args.deviations_of)
    except SetupFailed as exc:
        print(f"error: could not set up the test municipalities: {exc}", file=sys.stderr)
        return 2
    print(report_module.table(report))
    if args.json:
        args.json.write_text(report_module.as_json(report), encoding="utf-8")
    if args.html:
        args.html.write_text(report_module.as_html(report), encoding="utf-8")
    return 0 if report.mandatory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
