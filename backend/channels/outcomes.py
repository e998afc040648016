"""How a provider call can fail, as the send job must treat it."""


class TemporaryFailure(Exception):
    """Not delivered, and the provider did not take it: trying again later may work."""


class PermanentFailure(Exception):
    """Not delivered and never will be: `suppress` says to stop sending to the address."""

    def __init__(self, reason: str, *, suppress: bool) -> None:
        super().__init__(reason)
        self.suppress = suppress


class OutcomeUnknown(Exception):
    """The request went out but no answer came back: it may have been delivered. Never retried
    blindly (that could send twice); the message is failed with the reason."""
