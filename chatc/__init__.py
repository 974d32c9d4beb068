"""chatc: the terminal client for chatd."""
