"""Who may call the scoring service: API keys and the role matrix."""

from illicitflows.access.keys import (
    ROLE_PERMISSIONS,
    KeyInfo,
    KeyStore,
    Principal,
    allowed,
)

__all__ = ["ROLE_PERMISSIONS", "KeyInfo", "KeyStore", "Principal", "allowed"]
