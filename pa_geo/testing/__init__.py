"""Helpers for tests and benchmarks (imported by nothing else in pa_geo): tiny datasets in every released format
(:mod:`pa_geo.testing.formats`) and embedding caches of random vectors (:mod:`pa_geo.testing.caches`)."""
