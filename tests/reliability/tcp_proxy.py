"""A TCP proxy the test can cut and restore: a stand-in for a database server going away.

``cut()`` closes the listening socket (new connections are refused, as by a stopped server)
and resets every proxied connection; ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["CuttableProxy"]


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Accept connections again (on the same port)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                # SO_LINGER 0: close with RST, as when the server process dies.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class FaultyProxy(CuttableProxy):
    """A :class:`CuttableProxy` with the faults of a network in between, for the change-feed
    drills, while it keeps listening:

    - :meth:`reset` resets every proxied connection (both ends, RST), as a restarted load
      balancer or a NAT that lost its table does; new connections go through at once;
    - :meth:`blackhole` makes the network quiet: nothing is forwarded any more, in either
      direction, on open or new connections, and nothing is closed: the proxy's own TCP
      stack acknowledges what it receives, so the peers see neither an error nor data (as
      behind a stalled proxy, or a partition that TCP rides out) — until :meth:`heal`,
      which forwards everything held meanwhile, late.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self._flowing = threading.Event()
        self._flowing.set()
        self.resets = 0
        """Connections reset so far (each proxied connection counts once)."""
        super().__init__(target)

    def reset(self) -> int:
        """Reset every open proxied connection; how many (client sides) were reset."""
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        count = len(open_sockets) // 2
        self.resets += count
        return count

    def blackhole(self) -> None:
        """Stop forwarding (until :meth:`heal`), closing nothing."""
        self._flowing.clear()

    def heal(self) -> None:
        """Forward again, the data held since :meth:`blackhole` first."""
        self._flowing.set()

    @property
    def quiet(self) -> bool:
        """Whether the network is blackholed now."""
        return not self._flowing.is_set()

    def close(self) -> None:
        self.heal()
        super().close()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
