"""Adapters between engines and the outside world: ASGI/WSGI middleware, framework helpers.

Every web adapter is pure ASGI or WSGI (no ``BaseHTTPMiddleware``) and turns an
engine's decision object into HTTP. Framework packages are imported only by the
adapter modules that need them.

- :class:`TrustedProxies` - who the client is behind load balancers (``X-Forwarded-For``,
  ``Forwarded``), with optional IPv6 /64 aggregation.

    proxies = TrustedProxies(["10.0.0.0/8"])
    ip = proxies.client_ip("10.0.0.7", forwarded_for="203.0.113.9, 10.0.0.5")  # "203.0.113.9"
"""

from __future__ import annotations

from cognitionos.integrations.proxies import TrustedProxies

__all__ = ["TrustedProxies"]
