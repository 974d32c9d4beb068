"""Old import path of tests/support/server_opts.py, kept while branches written against it
merge."""

from tests.support.server_opts import *  # noqa: F403
