"""mDNS (Bonjour) advertisement of the show's OSCQuery server (`_oscjson._tcp`) and OSC port
(`_osc._udp`), so VJ software on the network finds it without typing an address.

python-zeroconf does the protocol. It is optional: when it is not installed, or the network will
not have it (no multicast, a name clash it cannot resolve), that is logged once and the show plays
on: clients can always be given the address. Only a server opened beyond loopback is advertised
(DESIGN, principle 4: nothing is announced to the network that was not opened to it).
Registration probes the network for a second or more, so it runs on a thread of its own.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

log = logging.getLogger("noclip")
OSCJSON = "_oscjson._tcp.local."
OSC = "_osc._udp.local."


def services(name: str, host: str, http_port: int, osc: tuple[str, int] | None) -> list[Any]:
    """The ServiceInfos to register: OSCQuery's HTTP port, and the OSC port when there is one.
    `host` "0.0.0.0"/"::" advertises every address of this machine. ImportError without zeroconf."""
    from zeroconf import ServiceInfo, get_all_addresses, get_all_addresses_v6

    def addresses(bound: str) -> list[str]:
        if bound in ("0.0.0.0", ""):
            return [a for a in get_all_addresses() if not a.startswith("127.")]
        if bound == "::":
            return [a for a in get_all_addresses() if not a.startswith("127.")] + [
                a[0][0] for a in get_all_addresses_v6() if a[0][0] != "::1"]  # ((address, flow, scope), index)
        return [bound]

    server = f"{socket.gethostname().split('.')[0]}.local."
    label = name[:63]
    out = [ServiceInfo(OSCJSON, f"{label}.{OSCJSON}", port=http_port, parsed_addresses=addresses(host),
                       server=server, properties={"txtvers": "1"})]
    if osc is not None:
        out.append(ServiceInfo(OSC, f"{label}.{OSC}", port=osc[1], parsed_addresses=addresses(osc[0]),
                               server=server, properties={"txtvers": "1"}))
    return out


class Advert:
    """Registers the services in the background; `close` withdraws them."""

    def __init__(self, name: str, host: str, http_port: int, osc: tuple[str, int] | None) -> None:
        self._zc: Any = None
        self._infos: list[Any] = []
        self._args = (name, host, http_port, osc)
        self._thread = threading.Thread(target=self._register, name="mdns", daemon=True)

    def start(self) -> Advert:
        self._thread.start()
        return self

    def _register(self) -> None:
        try:
            self._infos = services(*self._args)
            from zeroconf import Zeroconf

            self._zc = Zeroconf()
            for info in self._infos:
                self._zc.register_service(info, allow_name_change=True)
            log.info("mDNS: advertising %s", ", ".join(i.name for i in self._infos))
        except ImportError:
            log.info("mDNS: python-zeroconf is not installed; clients find the show by its address")
        except Exception as exc:  # no multicast here, a name clash: the show plays on unannounced
            log.warning("mDNS: cannot advertise (%s: %s); clients find the show by its address",
                        type(exc).__name__, exc)
            self._shut()

    def _shut(self) -> None:
        zc, self._zc = self._zc, None
        if zc is not None:
            try:
                zc.close()
            except Exception:
                pass

    def close(self) -> None:
        self._thread.join(timeout=5.0)
        if self._zc is not None:
            try:
                self._zc.unregister_all_services()
            except Exception:
                pass
        self._shut()
