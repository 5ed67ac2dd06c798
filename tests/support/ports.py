"""Free TCP ports and Envoy base ids, never handed out twice in one process."""

from __future__ import annotations

import itertools
import os
import socket
import threading

LOCALHOST = "127.0.0.1"

_given: set[int] = set()
_given_lock = threading.Lock()
_base_id_counter = itertools.count(1)
_base_id_lock = threading.Lock()


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    The OS picks it (bind to port 0); there is an unavoidable race until the child binds
    it, which is fine on a test machine.
    """
    # The OS may hand the port it just released to the next bind(0): never give one port
    # twice in this process (two services asked for in a row once got the same port).
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        with _given_lock:
            if port not in _given:
                _given.add(port)
                return port


def next_base_id() -> int:
    """Return an Envoy ``--base-id`` unique to this process and call.

    Envoy names its hot-restart shared memory and domain sockets after the base id, so two
    Envoys with the same id on one host clash. Mixing in the pid keeps parallel pytest
    processes (e.g. xdist workers) apart; the counter keeps Envoys within one process apart.
    """
    with _base_id_lock:
        n = next(_base_id_counter)
    return (os.getpid() % 1_000_000) * 100 + (n % 100)
