"""What the tests and the benchmarks share: a throwaway PostgreSQL (the project's own embedded
runner), the web program served in-process, snapshot records, and the bounded wait across
process boundaries.

Its own package, beside `tests/` and `bench/`, so both import it and neither imports the
other: a benchmark must not depend on the test suite's fixtures, and the tests must not depend
on benchmark code. It may use any package of the bridge; nothing of the bridge imports it, and
it is not installed with it.
"""
