"""Batched transmit through an ``AF_PACKET`` ``PACKET_TX_RING`` (Linux only).

How this works::

    user space (this class)                         kernel (af_packet.c, tpacket_snd)
    ┌ frame 0: hdr | Ethernet frame ┐ status AVAILABLE   -> we may write it
    │ frame 1: hdr | Ethernet frame │ status SEND_REQUEST -> written, waiting for a kick
    │   ...                         │ status SENDING      -> the kernel built an skb on it
    └ frame N-1                     ┘ status WRONG_FORMAT -> the kernel refused it

The socket is ``AF_PACKET``/``SOCK_RAW`` with protocol 0, bound to one interface: it
sends whole Ethernet frames and receives nothing (no protocol hook is registered, so the
kernel does not copy our own traffic back to us). A ring of ``frames`` fixed-size frames
is shared with the kernel through ``mmap``: we write a frame's bytes after its 32-byte
``tpacket2_hdr``, set ``tp_len`` and flip ``tp_status`` to ``TP_STATUS_SEND_REQUEST``;
``send()`` with an empty buffer (a *kick*) makes the kernel walk the ring from its own
head, turn every ``SEND_REQUEST`` frame into an skb that points at the ring's pages (no
copy of the payload) and hand it to the driver. When the driver frees the skb, the
kernel sets the frame back to ``TP_STATUS_AVAILABLE``. One system call thus sends any
number of frames, and a frame's bytes are written once, straight into memory the kernel
transmits from.

Choices:

* ``TPACKET_V2``: its header is fixed at 32 bytes with 32-bit fields on every
  architecture (``TPACKET_V1`` uses ``unsigned long``, whose size differs between 32- and
  64-bit user space), and ``TPACKET_V3``'s additions (variable-size frames in blocks
  retired by timeout) serve the receive ring only; on transmit it behaves as V2 with a
  larger header.
* ``PACKET_QDISC_BYPASS`` (Linux >= 3.14): the kernel hands skbs to the driver directly
  (``dev_direct_xmit``) instead of through the interface's queueing discipline, as
  pktgen does. It also skips the ``AF_PACKET`` taps (tcpdump on the sending interface
  does not see these frames) and the qdisc's back-pressure: when the driver's queue is
  full frames are dropped, not queued. :attr:`TxRing.qdisc_bypass` says whether the
  kernel accepted it; :attr:`TxRing.bypass_error` says why not.
* Without ``PACKET_LOSS``, a frame the kernel refuses (``tp_len`` beyond the device's MTU
  plus its link header, or shorter than a link header without ``CAP_SYS_RAWIO``) is
  marked ``TP_STATUS_WRONG_FORMAT``, the kick fails, and the kernel does not move past
  that frame again: :class:`FrameFormatError` names it and the ring refuses further
  frames (close it and open a new one). With ``PACKET_LOSS`` the kernel would skip such
  frames silently, which a scanner could not tell from frames sent.
* Ordering: we only write a frame while it is ``AVAILABLE`` (the kernel does not touch
  it then) and the kernel only reads ``SEND_REQUEST`` frames during our own kick, so the
  system call orders our stores before the kernel's loads; no explicit barrier is needed.
"""

from __future__ import annotations

import errno
import mmap
import select
import socket
import struct
import time

from pyscan.errors import PrivilegeError, ScanError

__all__ = [
    "FrameFormatError",
    "TxRing",
    "TxRingError",
    "txring_available",
]

# <linux/socket.h>, <linux/if_packet.h>
SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_LOSS = 14
PACKET_QDISC_BYPASS = 20
TPACKET_V2 = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1 << 0
TP_STATUS_SENDING = 1 << 1
TP_STATUS_WRONG_FORMAT = 1 << 2
TPACKET_ALIGNMENT = 16
_TPACKET2_HDR = 32  # sizeof(struct tpacket2_hdr), already a multiple of TPACKET_ALIGNMENT
_SOCKADDR_LL = 20  # sizeof(struct sockaddr_ll)
TPACKET2_HDRLEN = _TPACKET2_HDR + _SOCKADDR_LL
DATA_OFFSET = TPACKET2_HDRLEN - _SOCKADDR_LL
"""Where a frame's bytes start within its ring frame: without ``PACKET_TX_HAS_OFF`` the
kernel reads them at ``tp_hdrlen - sizeof(struct sockaddr_ll)``, right after the header."""

_TPACKET_REQ = struct.Struct("=IIII")  # block_size, block_nr, frame_size, frame_nr
_INT = struct.Struct("=i")
_MIN_FRAME = 14  # an Ethernet header
# A full send buffer (EAGAIN) or a driver queue that refused a frame (ENOBUFS, with qdisc
# bypass on a real NIC): the kernel sets that frame back to SEND_REQUEST and stops there.
_CONGESTED = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})


class TxRingError(ScanError):
    """The transmit ring cannot be set up or used."""


class FrameFormatError(TxRingError):
    """The kernel marked a frame ``TP_STATUS_WRONG_FORMAT`` and stopped at it.

    ``index`` is the ring frame, ``length`` its ``tp_len``, ``errno`` what the kick
    returned (``EMSGSIZE`` for a frame longer than the device's MTU plus its link header).
    """

    def __init__(self, index: int, length: int, err: int) -> None:
        self.index = index
        self.length = length
        self.errno = err
        name = errno.errorcode.get(err, str(err)) if err else "no error returned"
        super().__init__(
            f"the kernel refused ring frame {index} ({length} bytes): TP_STATUS_WRONG_FORMAT "
            f"({name}); the ring stops at that frame"
        )


def txring_available() -> bool:
    """Whether this platform has ``AF_PACKET`` (Linux); privileges are not checked."""
    return hasattr(socket, "AF_PACKET")


class TxRing:
    """An ``AF_PACKET`` transmit ring bound to one interface (see the module docstring).

    ``frame_size`` bytes per ring frame (a multiple of 16; frames of up to
    ``frame_size - 32`` bytes fit), ``frames`` ring frames; ``batch``: :meth:`put` and
    :meth:`commit` kick the kernel once that many frames are queued (0: only :meth:`flush`
    kicks); ``blocking``: kicks wait until the kernel has finished every frame (``send``
    without ``MSG_DONTWAIT``); ``qdisc_bypass``: ask for ``PACKET_QDISC_BYPASS``.

    Two ways to fill frames: :meth:`put` copies a whole Ethernet frame; or :meth:`reserve`
    returns the offset in :attr:`buffer` of the next free frame's data, the caller writes
    there (``struct.pack_into``, slice assignment) and :meth:`commit` queues it.

    Not thread-safe: one thread fills and kicks a ring.
    """

    def __init__(
        self,
        interface: str,
        *,
        frame_size: int = 2048,
        frames: int = 4096,
        batch: int = 256,
        blocking: bool = False,
        qdisc_bypass: bool = True,
        sndbuf: int = 8 << 20,
    ) -> None:
        if frame_size % TPACKET_ALIGNMENT or frame_size < TPACKET2_HDRLEN + _MIN_FRAME:
            raise ValueError(
                f"frame_size {frame_size} must be a multiple of {TPACKET_ALIGNMENT} "
                f"and at least {TPACKET2_HDRLEN + _MIN_FRAME}"
            )
        if frames < 1:
            raise ValueError(f"frames must be >= 1, not {frames}")
        self.interface = interface
        self.frame_size = frame_size
        self.frames = frames
        self.capacity = frame_size - DATA_OFFSET
        """The longest frame (in bytes) a ring frame holds."""
        self.batch = batch
        self.blocking = blocking
        self._flags = 0 if blocking else socket.MSG_DONTWAIT
        page = mmap.PAGESIZE
        block = max(page, -(-frame_size // page) * page)
        per_block = block // frame_size
        blocks = -(-frames // per_block)
        self.frames = frames = blocks * per_block  # whole blocks: round the count up
        self._offsets = [
            (i // per_block) * block + (i % per_block) * frame_size for i in range(frames)
        ]
        self._words_at = [off >> 2 for off in self._offsets]
        self.qdisc_bypass = False
        """The kernel accepted ``PACKET_QDISC_BYPASS``."""
        self.bypass_error: str | None = "not requested" if not qdisc_bypass else None
        """Why bypass is off (``None`` when on)."""
        self.committed = 0
        """Frames queued (status set to ``SEND_REQUEST``) so far."""
        self.kicks = 0
        """``send()`` calls made."""
        self.full_waits = 0
        """Times :meth:`reserve` found the ring full and had to wait."""
        self._head = 0
        self._queued = 0
        self._failed: TxRingError | None = None
        self._lent: memoryview | None = None
        self._closed = False
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as exc:
            raise PrivilegeError(f"AF_PACKET socket needs CAP_NET_RAW: {exc}") from exc
        except (OSError, AttributeError) as exc:
            raise TxRingError(f"cannot open an AF_PACKET socket: {exc}") from exc
        try:
            self._setup(qdisc_bypass, block, blocks, sndbuf)
        except BaseException:
            self.sock.close()
            raise
        self._map = mmap.mmap(
            self.sock.fileno(), block * blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._view = memoryview(self._map)
        self._words = self._view.cast("I")

    def _setup(self, qdisc_bypass: bool, block: int, blocks: int, sndbuf: int) -> None:
        sock = self.sock
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, _INT.pack(TPACKET_V2))
        except OSError as exc:
            raise TxRingError(f"PACKET_VERSION TPACKET_V2 refused: {exc}") from exc
        if qdisc_bypass:
            try:
                sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, _INT.pack(1))
                got = _INT.unpack(sock.getsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 4))[0]
            except OSError as exc:
                self.bypass_error = f"PACKET_QDISC_BYPASS refused by the kernel: {exc}"
            else:
                self.qdisc_bypass = got == 1
                if not self.qdisc_bypass:
                    self.bypass_error = f"PACKET_QDISC_BYPASS reads back {got}"
        try:  # the skbs in flight count against the send buffer; root may exceed wmem_max
            sock.setsockopt(socket.SOL_SOCKET, 32, sndbuf)  # SO_SNDBUFFORCE
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        req = _TPACKET_REQ.pack(block, blocks, self.frame_size, self.frames)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
        except OSError as exc:
            raise TxRingError(
                f"PACKET_TX_RING ({blocks} blocks of {block}, {self.frames} frames of "
                f"{self.frame_size}) refused: {exc}"
            ) from exc
        try:
            sock.bind((self.interface, 0))  # protocol 0: transmit only
        except OSError as exc:
            raise TxRingError(f"cannot bind to interface {self.interface!r}: {exc}") from exc

    # -- state --------------------------------------------------------------------------

    @property
    def buffer(self) -> memoryview:
        """The whole ring, writable (for ``struct.pack_into`` at :meth:`reserve` offsets).
        Write only into a frame :meth:`reserve` returned and not yet committed."""
        self._check_open()
        return self._view

    @property
    def queued(self) -> int:
        """Frames committed since the last kick that took them all."""
        return self._queued

    def status(self, index: int) -> int:
        """``tp_status`` of ring frame ``index`` (for checks and tests)."""
        self._check_open()
        return int(self._words[self._words_at[index]])

    def in_flight(self) -> int:
        """Ring frames not ``AVAILABLE`` (queued, being sent, or refused)."""
        self._check_open()
        words = self._words
        return sum(1 for w in self._words_at if words[w] != TP_STATUS_AVAILABLE)

    # -- filling frames -----------------------------------------------------------------

    def reserve(self, timeout: float | None = 5.0) -> int:
        """The offset in :attr:`buffer` where the next free frame's data starts.

        Waits (kicking the kernel, then polling) while the ring is full; raises
        :class:`TxRingError` after ``timeout`` seconds (``None``: wait forever), and
        :class:`FrameFormatError` if the kernel refused a frame. Calling it again before
        :meth:`commit` returns the same frame.
        """
        if self._failed is not None:
            raise self._failed
        off = self._offsets[self._head]
        if self._words[off >> 2] != TP_STATUS_AVAILABLE:
            self._wait_head(timeout)
        return off + DATA_OFFSET

    def slot(self, timeout: float | None = 5.0) -> memoryview:
        """The next free frame's data area (``capacity`` bytes) as a writable view, valid
        until :meth:`commit`, which releases it (using it afterwards raises ValueError)."""
        at = self.reserve(timeout)
        if self._lent is not None:
            self._lent.release()
        self._lent = self._view[at : at + self.capacity]
        return self._lent

    def commit(self, length: int) -> None:
        """Queue the reserved frame, ``length`` bytes long, for sending."""
        if not 0 < length <= self.capacity:
            raise ValueError(f"a frame of {length} bytes does not fit ({self.capacity} max)")
        if self._failed is not None:
            raise self._failed
        if self._lent is not None:
            self._lent.release()
            self._lent = None
        i = self._head
        w = self._words_at[i]
        words = self._words
        if words[w] != TP_STATUS_AVAILABLE:
            raise TxRingError(f"ring frame {i} is not reserved (status {words[w]:#x})")
        words[w + 1] = length  # tp_len
        words[w] = TP_STATUS_SEND_REQUEST
        self._head = i + 1 if i + 1 < self.frames else 0
        self.committed += 1
        self._queued += 1
        if self._queued >= self.batch > 0:
            self.flush()

    def put(self, frame: bytes | bytearray | memoryview, timeout: float | None = 5.0) -> None:
        """Copy one whole Ethernet frame into the ring and queue it (waits while full)."""
        n = len(frame)
        if not 0 < n <= self.capacity:
            raise ValueError(f"a frame of {n} bytes does not fit ({self.capacity} max)")
        if self._failed is not None:
            raise self._failed
        i = self._head
        off = self._offsets[i]
        w = off >> 2
        words = self._words
        if words[w] != TP_STATUS_AVAILABLE:
            self._wait_head(timeout)
        if self._lent is not None:
            self._lent.release()
            self._lent = None
        self._view[off + DATA_OFFSET : off + DATA_OFFSET + n] = frame
        words[w + 1] = n
        words[w] = TP_STATUS_SEND_REQUEST
        self._head = i + 1 if i + 1 < self.frames else 0
        self.committed += 1
        self._queued += 1
        if self._queued >= self.batch > 0:
            self.flush()

    # -- kicking the kernel -------------------------------------------------------------

    def flush(self) -> int:
        """Kick the kernel to send every queued frame; returns the bytes it took.

        The kernel may stop early: with ``blocking=False`` when the socket's send buffer
        is full (EAGAIN), and with qdisc bypass when the driver's queue refuses a frame
        (ENOBUFS). Those frames stay queued; the next kick or :meth:`reserve` retries them.
        """
        if self._failed is not None:
            raise self._failed
        if not self._queued:
            return 0
        self.kicks += 1
        try:
            sent = self.sock.send(b"", self._flags)
        except OSError as exc:
            if exc.errno not in _CONGESTED:
                self._find_refused(exc.errno or 0)
                raise TxRingError(f"kick (send) failed: {exc}") from exc
            sent = 0  # the kernel left the frame it could not pass on queued: retried later
        last = self._head - 1 if self._head else self.frames - 1
        if self._words[self._words_at[last]] != TP_STATUS_SEND_REQUEST:
            self._queued = 0  # the kernel reached the last committed frame
        return sent

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Kick, then wait until the kernel has released every frame; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self._queued:
                self.flush()
            if self.in_flight() == 0:
                return True
            self._find_refused(0)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._poll(min(left, 0.001))

    def _wait_head(self, timeout: float | None) -> None:
        """Wait until the head frame is ``AVAILABLE`` (the ring was full)."""
        self.full_waits += 1
        w = self._words_at[self._head]
        words = self._words
        deadline = None if timeout is None else time.monotonic() + timeout
        while words[w] != TP_STATUS_AVAILABLE:
            if words[w] & TP_STATUS_WRONG_FORMAT:
                self._find_refused(0)
            if self._queued:
                self.flush()
                if words[w] == TP_STATUS_AVAILABLE:
                    break
            left = 0.001 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TxRingError(
                    f"the ring stayed full for {timeout} s (head frame {self._head} "
                    f"status {words[w]:#x})"
                )
            self._poll(min(left, 0.001))

    def _poll(self, seconds: float) -> None:
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLOUT)
        poller.poll(max(1, int(seconds * 1000)))

    def _find_refused(self, err: int) -> None:
        """Raise :class:`FrameFormatError` for a frame the kernel marked WRONG_FORMAT."""
        words = self._words
        for i, w in enumerate(self._words_at):
            if words[w] & TP_STATUS_WRONG_FORMAT:
                self._failed = FrameFormatError(i, int(words[w + 1]), err)
                raise self._failed

    # -- lifetime -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TxRingError("the transmit ring is closed")

    @property
    def closed(self) -> bool:
        """:meth:`close` has run."""
        return self._closed

    def close(self, drain: float = 1.0) -> None:
        """Send what is queued and wait up to ``drain`` seconds for the kernel to release
        the frames, then unmap the ring and close the socket (idempotent). Views from
        :meth:`slot` and :attr:`buffer` must not be used afterwards."""
        if self._closed:
            return
        try:
            if drain > 0 and self._failed is None:
                self.wait_idle(drain)
        except TxRingError:
            pass  # closing anyway; the caller saw (or will not care about) the failure
        finally:
            self._closed = True
            self._failed = TxRingError("the transmit ring is closed")
            try:
                if self._lent is not None:
                    self._lent.release()
                    self._lent = None
                self._words.release()
                self._view.release()
                self._map.close()
            except BufferError as exc:
                raise TxRingError(
                    "a view of the ring is still held: the mapping stays until it is released"
                ) from exc
            finally:
                self.sock.close()

    def __enter__(self) -> TxRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"head={self._head} queued={self._queued}"
        return (
            f"<TxRing {self.interface} {self.frames}x{self.frame_size} "
            f"bypass={self.qdisc_bypass} {state}>"
        )
