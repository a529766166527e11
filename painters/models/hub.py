"""Whether the Hugging Face hub can be used right now, decided in milliseconds rather than after retries."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import huggingface_hub.constants


def hub_available(timeout: float = 3.0) -> bool:
    """False when offline mode is set or one TCP connect to the hub fails.

    The hub client retries an unreachable host for half a minute; one connect fails in milliseconds.
    Behind a proxy a direct connect proves nothing, so there the hub client is trusted to try.
    """
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(huggingface_hub.constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
