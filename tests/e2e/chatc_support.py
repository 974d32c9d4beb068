"""Old import path of tests/support/chatc.py, kept while branches written against it merge."""

from tests.support.chatc import *  # noqa: F403
