"""The standard as data (specs/), its loader and linter, deviations, change proposals and the
conformance kit (kit/). `kiban.standard.spec` and `kiban.standard.kit` import nothing from
the rest of Kiban but `kiban.core`, so the kit runs without Kiban's server installed."""
