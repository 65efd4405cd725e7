"""A small binding to libnftables (the `nft` tool's library) speaking its JSON API.

    nft = Nft()                       # libnftables.so.1 through ctypes, else `nft -j -f -`
    nft.run([{"add": {"table": {"family": "ip", "name": "t"}}}, ...])   # one atomic transaction
    nft.run([{"list": {"table": {"family": "ip", "name": "t"}}}], terse=True) -> [objects]

Every call to `run` is one batch, so the kernel applies all of its commands or none. Errors
raise NftError with libnftables' own message. `tables()`, `counters()` and `set_size()` read
nfnetlink themselves (nft_read.py): for those listings libnftables fetches the whole ruleset
with every set element.
The context is not thread-safe: use one per thread (the data plane keeps one in its worker
thread, which may live in another network namespace: the netlink sockets belong to the
namespace of the thread that first uses them).
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from typing import Any

from ..errors import HadirectorError
from ..net.nlraw import NetlinkRefused
from .nft_read import NftRead

# include/nftables/libnftables.h
NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4
NFT_CTX_OUTPUT_TERSE = 1 << 11  # no set elements in listings

LIBRARY = "libnftables.so.1"


class NftError(HadirectorError, RuntimeError):
    """libnftables refused a batch; `.message` is its error text, `.commands` the batch."""

    def __init__(self, message: str, commands: Any = None):
        super().__init__(message)
        self.message = message
        self.commands = commands


class _Lib:
    def __init__(self, path: str = LIBRARY):
        lib = ctypes.CDLL(path)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
        lib.nft_ctx_output_get_flags.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.lib = lib


class Nft:
    """One libnftables context (or the `nft` command when the library cannot be loaded)."""

    def __init__(self, prefer_library: bool = True):
        self._lib: _Lib | None = None
        self._ctx: int | None = None
        self._reader: NftRead | None = None  # the nfnetlink socket of the reads, made at first use
        if prefer_library:
            try:
                self._lib = _Lib()
            except OSError:
                self._lib = None
        if self._lib is None and shutil.which("nft") is None:
            raise NftError(f"neither {LIBRARY} nor the nft command is available")
        self.backend = "libnftables" if self._lib else "nft"

    def _context(self) -> int:
        if self._ctx is None:
            assert self._lib is not None
            lib = self._lib.lib
            ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
            if not ctx:
                raise NftError("nft_ctx_new failed")
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            self._ctx = ctx
        return self._ctx

    def run(self, commands: list[dict], terse: bool = False) -> list[dict]:
        """Run one batch of JSON commands; return the objects a listing produced (else [])."""
        text = json.dumps({"nftables": commands})
        if self._lib is not None:
            lib = self._lib.lib
            ctx = self._context()
            flags = NFT_CTX_OUTPUT_JSON | (NFT_CTX_OUTPUT_TERSE if terse else 0)
            lib.nft_ctx_output_set_flags(ctx, flags)
            rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        else:
            argv = ["nft", "-j"] + (["-t"] if terse else []) + ["-f", "-"]
            cp = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60)
            rc, out, err = cp.returncode, cp.stdout, cp.stderr
        if rc != 0:
            raise NftError(_first_error(err) or f"nft failed (exit {rc})", commands)
        return _objects(out)

    def run_text(self, text: str) -> None:
        """One batch in nft's own syntax. Only for what the JSON API cannot say: its set element
        timeouts are whole seconds (libnftables json.c), and VIP leases need milliseconds."""
        if self._lib is not None:
            lib = self._lib.lib
            ctx = self._context()
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
            # libnftables tries the JSON parser first and falls back to nft syntax on EINVAL
            rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        else:
            cp = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, timeout=60)
            rc, err = cp.returncode, cp.stderr
        if rc != 0:
            raise NftError(_first_error(err) or f"nft failed (exit {rc})", text)

    def list(self, what: dict, terse: bool = True) -> list[dict]:
        """`list` one thing, e.g. {"table": {"family": "ip", "name": "hadirector"}}."""
        return self.run([{"list": what}], terse=terse)

    # reads over nfnetlink (nft_read.py): libnftables would fetch the whole ruleset for each
    def tables(self) -> list[tuple[str, str]]:
        """Every table, (family, name)."""
        return self._read("list tables", lambda r: r.tables())

    def counters(self, family: str, table: str) -> dict[str, tuple[int, int]]:
        """The named counters of a table: name -> (packets, bytes)."""
        return self._read(f"list counters {family} {table}", lambda r: r.counters(family, table))

    def set_size(self, family: str, table: str, name: str) -> int:
        """How many elements a set holds."""
        return self._read(f"list set {family} {table} {name}", lambda r: r.set_size(family, table, name))

    def _read(self, what: str, fn: Any) -> Any:
        try:
            if self._reader is None:
                self._reader = NftRead()
            return fn(self._reader)
        except NetlinkRefused as exc:
            raise NftError(f"{what}: {exc.reason}") from None
        except OSError as exc:
            raise NftError(f"{what}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._ctx is not None and self._lib is not None:
            self._lib.lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _objects(out: str) -> list[dict]:
    """The objects of every JSON document in the output (one per listing command)."""
    objs: list[dict] = []
    dec = json.JSONDecoder()
    i, n = 0, len(out)
    while i < n:
        while i < n and out[i].isspace():
            i += 1
        if i >= n:
            break
        doc, i = dec.raw_decode(out, i)
        for o in doc.get("nftables", []):
            if "metainfo" not in o:
                objs.append(o)
    return objs


def _first_error(err: str) -> str:
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    msgs = [ln.split("Error:", 1)[1].strip() for ln in lines if "Error:" in ln]
    return "; ".join(dict.fromkeys(msgs)) if msgs else "\n".join(lines)
