"""libpcre (PCRE 8.x, the library nmap 7.93 links) through ctypes, as a test oracle.

``PCRE`` is ``None`` when the shared library is not installed; tests using it skip.
"""

from __future__ import annotations

import ctypes
import ctypes.util

PCRE_CASELESS = 0x00000001
PCRE_DOTALL = 0x00000004


class _Pcre:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        lib.pcre_compile.restype = ctypes.c_void_p
        lib.pcre_compile.argtypes = [
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_void_p,
        ]
        lib.pcre_exec.restype = ctypes.c_int
        lib.pcre_exec.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        lib.pcre_version.restype = ctypes.c_char_p
        self.version = lib.pcre_version().decode()

    def compile(self, pattern: bytes, *, caseless: bool = False, dotall: bool = False) -> int:
        """A compiled pattern handle; raises ValueError with PCRE's message on error."""
        error = ctypes.c_char_p()
        offset = ctypes.c_int()
        options = (PCRE_CASELESS if caseless else 0) | (PCRE_DOTALL if dotall else 0)
        handle = self._lib.pcre_compile(
            pattern, options, ctypes.byref(error), ctypes.byref(offset), None
        )
        if not handle:
            raise ValueError(f"{(error.value or b'').decode()} at {offset.value}")
        return int(handle)

    def search(self, handle: int, subject: bytes) -> list[tuple[int, int]] | None:
        """Spans of the whole match and every group ((-1, -1) when unset), or None."""
        ovector = (ctypes.c_int * 90)()
        rc = self._lib.pcre_exec(handle, None, subject, len(subject), 0, 0, ovector, 90)
        if rc == -1:  # PCRE_ERROR_NOMATCH
            return None
        if rc < 0:
            raise RuntimeError(f"pcre_exec error {rc}")
        return [(ovector[2 * i], ovector[2 * i + 1]) for i in range(rc)]


def _load() -> _Pcre | None:
    for name in ("libpcre.so.3", ctypes.util.find_library("pcre")):
        if name:
            try:
                return _Pcre(ctypes.CDLL(name))
            except OSError:
                continue
    return None


PCRE = _load()
