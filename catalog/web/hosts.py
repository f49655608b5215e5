"""Which ``Host:`` headers the web app answers (protection against DNS rebinding).

A web page on ``evil.example`` can make its name resolve to 127.0.0.1 and
then read ``http://evil.example:8080/`` from the user's browser: the browser
sends it to the catalog, with ``Host: evil.example:8080``. Refusing host names
the server does not know about stops that; an IP address can never be
rebound, so the names that matter are DNS names.

The server answers:

- bound to loopback (the default): ``localhost``, ``127.0.0.1`` and ``[::1]``,
  and the bound address itself;
- bound to another address or name: that address or name (and the address it
  resolved to);
- bound to every interface (``0.0.0.0``, ``::``): the loopback names and any
  IP address;
- whatever ``--allow-host`` adds: ``NAME`` at any port, ``NAME:PORT`` at that port.

The port of a known name is not checked: it adds nothing against rebinding (the
attacker controls the name, not the port), and an SSH tunnel or a container's port
mapping reaches the server under another local port.

An app that :func:`bind` was not called on (``create_app`` alone, the test
client) answers the loopback names at any port. A request without a ``Host``
header (HTTP/1.0) is answered: no browser sends one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask

HOSTS_KEY = "catalog.hosts"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
DEFAULT_HTTP_PORT = 80


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(name: str) -> bool:
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` value (name lower-case, IPv6 without brackets); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if not _is_ip(name) or ":" not in name:
            return None
    elif value.count(":") > 1 and _is_ip(value):
        name, rest = value, ""  # a bare IPv6 address (only in --allow-host)
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and int(rest[1:]) <= 65535):
        return None
    name = name.rstrip(".")  # "localhost." is localhost
    if not name or any(c in name for c in "/\\@?#% \t") or (":" in name and not _is_ip(name)):
        return None
    return name, (int(rest[1:]) if rest else None)


def parse_allowed(value: str) -> tuple[str, int | None]:
    """An ``--allow-host`` value: ``NAME`` or ``NAME:PORT`` (``[IPv6]:PORT``); ValueError if not."""
    parsed = split_host(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not a host name, or a host name and port like catalog.lan:8080.")
    return parsed


def show(name: str, port: int | None = None) -> str:
    host = f"[{name}]" if ":" in name else name
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` values the app answers."""

    names: frozenset[str]  # answered at ``port``
    port: int | None  # the bound port; None: any port (not bound to one yet)
    ip_addresses: bool = False  # every IP address at ``port`` (bound to every interface)
    extra: tuple[tuple[str, int | None], ...] = ()  # --allow-host: (name, port or None for any)

    def allows(self, header: str | None) -> bool:
        if header is None:
            return True
        parsed = split_host(header)
        if parsed is None:
            return False
        name, port = parsed
        for allowed_name, allowed_port in self.extra:
            if name == allowed_name and (allowed_port is None or allowed_port == (port or DEFAULT_HTTP_PORT)):
                return True
        return name in self.names or (self.ip_addresses and _is_ip(name))

    def example(self) -> str:
        """An address the app does answer, for the refusal message."""
        name = "127.0.0.1" if "127.0.0.1" in self.names else sorted(self.names)[0]
        return show(name, self.port)

    def describe(self) -> list[str]:
        """The allowed hosts, for the log."""
        shown = [show(n, self.port) for n in sorted(self.names)]
        if self.ip_addresses:
            shown.append(show("<any IP address>", self.port))
        shown += [show(n, p) if p is not None else f"{show(n)} (any port)" for n, p in self.extra]
        return shown


def unbound_policy(extra: Iterable[str] = ()) -> HostPolicy:
    """Before the app is bound to an address: the loopback names at any port, and ``extra``."""
    return HostPolicy(LOOPBACK_NAMES, None, extra=tuple(parse_allowed(e) for e in extra))


def bound_policy(
    host: str, port: int, *, effective_host: str | None = None, extra: Iterable[tuple[str, int | None]] = ()
) -> HostPolicy:
    """The policy of a server listening on ``host:port`` (see the module docstring)."""
    bound = host.strip("[]").lower().rstrip(".")
    names = {bound}
    if effective_host:
        names.add(effective_host.strip("[]").lower())
    wildcard = bound in WILDCARDS
    if wildcard or is_loopback(bound):
        names |= LOOPBACK_NAMES
    names -= WILDCARDS
    return HostPolicy(frozenset(names), port, ip_addresses=wildcard, extra=tuple(extra))


def policy(app: Flask) -> HostPolicy:
    return app.extensions[HOSTS_KEY]


def bind(app: Flask, host: str, port: int, effective_host: str | None = None) -> HostPolicy:
    """Answer the hosts of a server on ``host:port`` from now on (keeps the app's ``--allow-host`` names)."""
    bound = bound_policy(host, port, effective_host=effective_host, extra=policy(app).extra)
    app.extensions[HOSTS_KEY] = bound
    return bound
