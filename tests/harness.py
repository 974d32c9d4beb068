"""Old import path of tests/support/harness.py, kept while branches written against it merge."""

from tests.support.harness import *  # noqa: F403
