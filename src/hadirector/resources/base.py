"""The resource agent protocol, the registry of agents, and the helpers agents share.

An agent manages one resource of a group (one entry of a haresources line): `start()`, `stop()`
and `monitor()` are coroutines (and, optionally, `reannounce()`). start/stop return on success and
raise `AgentError` on failure; monitor returns True (running) or False (not running) and raises
`AgentError` when it cannot tell. Agents do not time themselves out: the caller wraps each call
with `call_with_timeout()`, which cancels the call (an agent that runs a program kills it on
cancellation) and raises `AgentError(..., timeout=True)`.

Each agent lives in its own module and registers its class under the model's `kind` with
`@register`; `agent_for(model, ctx)` imports every module of this package once, then builds the
agent. Adding a kind means adding one module.

`AgentContext` carries what agents need from their surroundings: the network namespace to act in
(None for the daemon; the tests and the lab use namespaces), the heartbeat resource directories,
OCF_ROOT, and `services` (objects the daemon hands to agents, e.g. the balancer driver).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pkgutil
import signal
import tempfile
from dataclasses import dataclass, field
from typing import Any, Awaitable, ClassVar, Mapping, TypeVar

from pydantic import BaseModel

from ..errors import HadirectorError, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")

# heartbeat's HA_RESOURCEDIR, then INITDIR (ResourceManager scriptpath())
DEFAULT_RESOURCE_DIRS = ("/etc/ha.d/resource.d", "/etc/init.d")
DEFAULT_OCF_ROOT = "/usr/lib/ocf"
OUTPUT_LIMIT = 64 * 1024  # bytes of a program's stdout/stderr kept for status text and messages


class AgentError(HadirectorError):
    """A start, stop or monitor that failed. `transient` says whether a retry may help (a timeout,
    a busy kernel); a fatal error (script missing, bad arguments) will fail again the same way.
    `code` is the program's exit code or the errno; `errno` only the latter."""

    def __init__(self, message: str, *, transient: bool = True, timeout: bool = False,
                 code: int | None = None, errno: int | None = None):
        super().__init__(message, transient=transient, errno=errno)
        self.timeout = timeout
        self.code = code


@dataclass(frozen=True)
class AgentContext:
    netns: str | None = None  # act inside this network namespace (programs via `ip netns exec`)
    resource_dirs: tuple[str, ...] = DEFAULT_RESOURCE_DIRS
    ocf_root: str = DEFAULT_OCF_ROOT
    systemctl: str = "systemctl"
    env: Mapping[str, str] = field(default_factory=dict)  # added to every program's environment
    services: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"balancer": driver}


class Agent:
    """Base class of the agents. Subclasses set `kind` and implement the three operations."""

    kind: ClassVar[str] = ""

    def __init__(self, model: BaseModel, ctx: AgentContext):
        self.model = model
        self.ctx = ctx

    @property
    def name(self) -> str:
        """How logs name this resource, e.g. `vip 198.18.0.10`, `script httpd`."""
        return self.kind

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def monitor(self) -> bool:
        raise NotImplementedError

    async def prepare(self) -> None:
        """Called for every resource of a group, in order, before the group's first resource
        starts (its VIPs are announced). The balancer commits the NAT connections synced by
        conntrackd here, as keepalived users do in notify_master. A failure is logged, not fatal:
        the start that follows reports what does not work. Most agents have nothing to do."""

    async def reannounce(self) -> bool:
        """Tell the network again that this node holds the resource (gratuitous ARP for a VIP).
        Returns whether the agent had anything to announce. Most agents have not."""
        return False

    def status(self) -> dict[str, Any]:
        """Extra facts for `hadirector status` (counters, the chosen interface...)."""
        return {}

    async def close(self) -> None:
        """Release in-process helpers (background tasks). Does not stop the resource."""


REGISTRY: dict[str, type[Agent]] = {}
_loaded = False
_NOT_AGENTS = {"base", "manager", "lease"}


def register(cls: type[Agent]) -> type[Agent]:
    """Class decorator: make `cls` the agent for resources of `cls.kind`."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    other = REGISTRY.get(cls.kind)
    if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
        raise TypeError(f"resource kind {cls.kind!r} is registered twice: {other.__name__}, {cls.__name__}")
    REGISTRY[cls.kind] = cls
    return cls


def load_agents() -> dict[str, type[Agent]]:
    """Import every agent module of this package (once). A module that fails to import is logged
    and skipped, so one broken agent does not take the others down."""
    global _loaded
    if not _loaded:
        _loaded = True
        pkg = importlib.import_module(__package__)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name in _NOT_AGENTS or mod.name.startswith("_"):
                continue
            try:
                importlib.import_module(f"{__package__}.{mod.name}")
            except Exception as e:  # noqa: BLE001 - report and go on
                log.error("resource agent module %s did not load: %s", mod.name, e)
    return REGISTRY


def agent_for(model: BaseModel, ctx: AgentContext | None = None) -> Agent:
    kind = getattr(model, "kind", None)
    cls = load_agents().get(kind)  # type: ignore[arg-type]
    if cls is None:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise AgentError(f"no resource agent for kind {kind!r} (known: {known})", transient=False)
    return cls(model, ctx or AgentContext())


async def call_with_timeout(what: str, coro: Awaitable[T], timeout_ms: int) -> T:
    """Await `coro`; after `timeout_ms` cancel it and raise AgentError(timeout=True)."""
    try:
        async with asyncio.timeout(timeout_ms / 1000.0):
            return await coro
    except TimeoutError:
        raise AgentError(f"{what} timed out after {timeout_ms} ms", timeout=True) from None


# --------------------------------------------------------------------------- running programs

@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def brief(self) -> str:
        """The last non-empty line of the output, for messages."""
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1][:300]
        return ""


def _read_capped(f) -> str:
    f.seek(0)
    return f.read(OUTPUT_LIMIT).decode("utf-8", "replace")


async def run_program(argv: list[str], ctx: AgentContext, *,
                      env: Mapping[str, str] | None = None) -> Completed:
    """Run a program (inside ctx.netns when set) and wait for it to exit.

    Output goes to unnamed temporary files rather than pipes: an init script that starts a daemon
    which keeps stdout open must not make us wait for the daemon. The program runs in its own
    session; if this coroutine is cancelled (timeout, shutdown) that session's process group is
    killed (SIGKILL), and the program is reaped before the cancellation propagates."""
    full = list(argv)
    if ctx.netns:
        full = ["ip", "netns", "exec", ctx.netns, *full]
    environ = dict(os.environ)
    environ.update(ctx.env)
    if env:
        environ.update(env)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = await asyncio.create_subprocess_exec(
                *full, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, env=environ,
                start_new_session=True)
        except OSError as e:
            raise AgentError(f"cannot run {argv[0]}: {e.strerror or e}", transient=is_transient(e),
                             errno=e.errno) from None
        try:
            rc = await proc.wait()
        except BaseException:
            # our own child's process group (start_new_session made pgid == its pid)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await asyncio.shield(proc.wait())
            raise
        return Completed(tuple(argv), rc, _read_capped(out), _read_capped(err))
