"""Index of the test fixtures; each family lives in its own module under tests/fixtures."""

pytest_plugins = (
    "tests.fixtures.environment",
    "tests.fixtures.postgres",
    "tests.fixtures.proxy",
    "tests.fixtures.pipeline",
    "tests.fixtures.processes",
    "tests.fixtures.supervisor",
    "tests.fixtures.replication",
    "tests.fixtures.simulator",
    "tests.fixtures.receiver",
    "tests.fixtures.web",
    "tests.fixtures.browser",
    "tests.fixtures.prometheus",
)
