"""chatd: an asyncio chat server speaking newline-delimited JSON (see PROTOCOL.txt)."""

__version__ = "0.1.0"
