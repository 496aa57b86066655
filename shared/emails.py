"""Email address handling that both tiers agree on."""


def normalize_email(address: str) -> str:
    """The form a stored address takes: the same mailbox always maps to the same row."""
    return address.strip().lower()


def mask_email(address: str) -> str:
    """A form safe for logs: `a***@example.com`. Never log a full address."""
    local, _, domain = address.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"
