"""The one base class of every error a user can cause; the CLI prints these as one line and exits 2."""


class PaintersError(ValueError):
    """Bad input: the message is one line naming what is wrong and what would be valid."""
