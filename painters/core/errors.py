"""The one base class of every error a user can cause; the CLI prints these as one line and exits 2."""


class PaintersError(ValueError):
    """Bad input: the message is one line naming what is wrong and what would be valid.

    Messages quote what the user gave; a line break in it is shown escaped, so the message stays one line.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))
