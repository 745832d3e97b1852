"""How registries are to be reached, as a user asked: what a `Request` carries to the registry
source (kept apart from the HTTP client, which only a registry reference imports)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a request is tried again, and how long it waits between tries: `backoff`
    seconds doubled each time, or what `Retry-After` asks for, up to `longest_wait`."""

    retries: int = 4
    backoff: float = 0.5
    longest_wait: float = 60.0
    timeout: float = 60.0  # seconds a connection may stay silent

    def wait(self, attempt: int, retry_after: float | None) -> float:
        return retry_after if retry_after is not None else self.backoff * 2 ** attempt


@dataclass(frozen=True, slots=True)
class RegistryAccess:
    """How registries are reached: `creds` (USER:PASS, else found as `credentials` says),
    a CA file to trust besides the system's, hosts allowed over plain http, retries."""

    creds: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    insecure: tuple[str, ...] = ()
    policy: RetryPolicy = field(default_factory=RetryPolicy)


__all__ = ["RegistryAccess", "RetryPolicy"]
