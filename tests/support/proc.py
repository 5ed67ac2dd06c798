"""One managed subprocess, :class:`Proc`, used by every fixture and by bench/.

* every child runs in its own session (process group) and is stopped with SIGTERM, then
  SIGKILL after a grace period, to the whole group;
* every started :class:`Proc` is also registered for an ``atexit`` sweep, so even an
  interrupted run (Ctrl-C, internal error) leaves no orphans behind;
* every failure raised while waiting on a process includes the tail of its log file.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn


class ProcError(RuntimeError):
    """A managed process failed to start, died, or did not become ready."""


_LIVE: set[Proc] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_live() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.stop(timeout=2.0)


atexit.register(_stop_all_live)


class Proc:
    """A subprocess whose stdout and stderr go to ``log_path``.

    Use as a context manager, or call :meth:`start` / :meth:`stop` yourself. The child runs
    in a new session so it can be stopped as a process group and so a terminal Ctrl-C
    reaches pytest (which then tears fixtures down) rather than every child at once.

    The Popen-like methods (``pid``, ``poll``, ``wait``, ``send_signal``, ``terminate``,
    ``kill``, ``returncode``) let tests signal the process directly.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        self.name = name or Path(self.argv[0]).name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Proc:
        """Start the process (once). Returns ``self``."""
        if self.popen is not None:
            raise ProcError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, wait ``timeout`` s, then SIGKILL. Returns the exit code.

        Safe to call repeatedly and on a process that already exited.
        """
        popen = self.popen
        if popen is None:
            return None
        try:
            if popen.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    # The leader is unreaped, so its pid (= the group id) cannot have been
                    # reused: signalling the group is safe.
                    self._signal_group(signal.SIGKILL)
                    popen.wait(timeout=timeout)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
        return popen.returncode

    def _signal_group(self, sig: int) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def __enter__(self) -> Proc:
        if self.popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "not started" if self.popen is None else f"pid={self.popen.pid}"
        return f"<Proc {self.name} {state} rc={self.returncode}>"

    # -- Popen-like --------------------------------------------------------------------

    def _require(self) -> subprocess.Popen[bytes]:
        if self.popen is None:
            raise ProcError(f"{self.name} not started")
        return self.popen

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self._require().pid

    @property
    def returncode(self) -> int | None:
        """Exit code, or ``None`` while running / not started."""
        return None if self.popen is None else self.popen.poll()

    def poll(self) -> int | None:
        """Like :meth:`subprocess.Popen.poll`."""
        return self._require().poll()

    def alive(self) -> bool:
        """True while the child is running."""
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; on timeout raise :class:`ProcError` with the log tail."""
        try:
            return self._require().wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"{self.name} did not exit within {timeout}s")

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child itself (not its group)."""
        self._require().send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM the child."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child."""
        self.send_signal(signal.SIGKILL)

    # -- logs --------------------------------------------------------------------------

    def log_text(self) -> str:
        """The whole log so far (stdout and stderr interleaved)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def fail(self, message: str, *, lines: int = 40) -> NoReturn:
        """Raise :class:`ProcError` with ``message``, the exit state and the log tail."""
        rc = self.returncode
        state = "running" if rc is None else f"exited with {rc}"
        raise ProcError(
            f"{message} [{self.name} {state}]\n"
            f"--- last {lines} lines of {self.log_path} ---\n{self.log_tail(lines)}"
        )

    def check_alive(self, what: str = "while waiting") -> None:
        """Raise (with the log tail) if the process has exited."""
        if not self.alive():
            self.fail(f"{self.name} exited {what}")


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc): a supervisor's workers."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found
