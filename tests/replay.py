"""Old import path of tests/support/replay.py, kept while branches written against it merge."""

from tests.support.replay import *  # noqa: F403
