"""Errors that reach a person: each carries one line saying what is wrong and what to do."""


class OmniError(Exception):
    """Base of errors shown to a person as one line, never as a traceback."""


class UsageError(OmniError):
    """A bad command line, config file or environment."""


class StoreError(OmniError):
    """The database cannot be opened or used (unreadable, too new, disk full)."""
