"""Requests in flight: what a call costs between the caller and the socket.

Exists because a small request's Python-side cost, not the server or the
wire, bounded what one client could do (1-row appends with asyncio.gather
ran at ~0.5x h5py's local resize-and-write). Three costs are removed here:

* **A Task per call.** ``asyncio.gather(c.append(...) for ...)`` wraps each
  coroutine in a Task (created, scheduled, stepped twice): more than half of
  a small request's time. HDF5Client's methods that send one request (``@fast``) are
  plain functions that, called on the client's own loop, encode and queue
  the request at once and return its reply future (a :class:`Call`); gather
  and ``await`` take a future as it is. The reply's post-processing (the
  shape of an append, the array of a read) runs when the reply is decoded.
  Everywhere else (another thread's loop, [cluster] routing to another
  node, a large frame, a full send buffer, a reconnect under way) the call
  returns the coroutine it always was, so ``run_coroutine_threadsafe`` and
  every policy keep working unchanged. A Call also speaks the coroutine
  protocol (send/throw/close), so ``asyncio.create_task(c.ping())`` works.
  One difference: a fast call's request leaves even if nobody awaits it.
* **Order.** Requests leave in the order the calls were made, as they did
  when every call was a coroutine started in order (gather): a call that
  returns a coroutine registers a ticket until that coroutine starts
  (:func:`later`), and while any ticket is out, fast calls return
  coroutines too, so none overtakes an earlier one. A ticket of a
  coroutine dropped unstarted goes with it (weak references).
* **A timer per call.** Every call with a timeout had its own
  ``call_later`` handle; now the connection has one timer (:class:`Deadlines`):
  calls are watched in the order they were sent (all with the same timeout,
  so deadlines come in order), the timer fires at the oldest deadline still
  open, and replies drop answered calls off the front.
* **Encoding** (codec.encode_request): prebuilt MessagePack bytes for keys
  and array headers, no per-call dict or list churn.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, TypeVar

from . import codec
from .errors import BadReplyError, HDF5AsyncError, TimedOutError, error_from_reply
from .protocol import SMALL_SEND, Reply

log = logging.getLogger("hdf5_async")

__all__ = ["Call", "Deadlines", "InFlight", "fast", "later", "ordered", "raise_later"]


class Call(asyncio.Future):  # type: ignore[type-arg]
    """A request's reply future; ``post`` (or None) turns the reply's result
    into what the caller gets. Awaitable as any future, and a coroutine for
    asyncio.create_task's sake (send/throw/close drive its own __await__)."""

    __slots__ = ("post", "_it")

    def __init__(self, loop: asyncio.AbstractEventLoop, post: Optional[Callable[[Any], Any]]) -> None:
        super().__init__(loop=loop)
        self.post = post
        self._it: Any = None

    # -- the coroutine protocol (collections.abc.Coroutine checks for these)
    def send(self, value: Any) -> Any:
        if self._it is None:
            self._it = self.__await__()
        return self._it.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._it is None:
            self._it = self.__await__()
        if val is None:
            return self._it.throw(typ)
        return self._it.throw(typ, val, tb)

    def close(self) -> None:
        self.cancel()


def resolve(fut: "asyncio.Future[Any]", result: Any) -> None:
    """Complete a request's future with its ok reply's result (post-processed
    for a Call; an exception from that is the call's)."""
    if fut.done():
        return
    post = fut.post if type(fut) is Call else None
    if post is None:
        fut.set_result(result)
        return
    try:
        value = post(result)
    except Exception as e:
        fut.set_exception(e)
    else:
        fut.set_result(value)


async def raise_later(exc: BaseException) -> Any:
    """A coroutine that raises exc when awaited: how a fast call reports a
    bad argument, as the coroutine it replaces did (at await, not at call)."""
    raise exc


F = TypeVar("F", bound=Callable[..., Any])


def fast(build: F) -> F:
    """Decorator of HDF5Client's hot methods: build(self, ...) checks the
    arguments and returns (op, path, durability, post, args); the method
    returns the awaitable of HDF5Client._submit. A builder is annotated
    with what its method returns (an awaitable of the result), which is
    what type checkers see; its own return statements say otherwise, hence
    their type: ignore."""

    def method(self: Any, *a: Any, **kw: Any) -> Any:
        try:
            op, path, durability, post, args = build(self, *a, **kw)
        except Exception as e:
            return raise_later(e)
        return self._submit(op, path, durability, post, args)

    method.__name__ = build.__name__
    method.__qualname__ = build.__qualname__
    method.__doc__ = build.__doc__
    method.__wrapped__ = build  # type: ignore[attr-defined]
    return method  # type: ignore[return-value]


class Ticket:
    """Held by a coroutine not yet started (weakly by the client's set)."""

    __slots__ = ("__weakref__",)


def later(client: Any, fn: Callable[..., Any], args: Tuple[Any, ...], kw: Dict[str, Any]) -> Any:
    """The coroutine fn(*args, **kw); made on the client's loop, it holds a
    ticket in client._unstarted until it starts, and no fast call overtakes
    it meanwhile."""
    loop = client._loop
    if loop is None or asyncio._get_running_loop() is not loop:
        return fn(*args, **kw)  # another thread or loop: no order to keep with fast calls
    ticket = Ticket()
    client._unstarted.add(ticket)
    return _in_order(client._unstarted, ticket, fn, args, kw)


async def _in_order(unstarted: "weakref.WeakSet[Ticket]", ticket: Ticket, fn: Callable[..., Any],
                    args: Tuple[Any, ...], kw: Dict[str, Any]) -> Any:
    unstarted.discard(ticket)
    return await fn(*args, **kw)


def ordered(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of HDF5Client's async methods that send requests: fast
    calls made after one does not overtake it (see later)."""

    def method(self: Any, *a: Any, **kw: Any) -> Any:
        return later(self, fn, (self,) + a, kw)

    method.__name__ = fn.__name__
    method.__qualname__ = fn.__qualname__
    method.__doc__ = fn.__doc__
    method.__wrapped__ = fn  # type: ignore[attr-defined]
    return method


class Deadlines:
    """The connection's one timer over the calls waiting for replies."""

    __slots__ = ("_loop", "_q", "_timer", "_timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # (deadline, future, op, path), in the order the calls were sent
        self._q: Deque[Tuple[float, "asyncio.Future[Any]", str, Optional[str]]] = collections.deque()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timeout: Optional[float] = None

    def watch(self, fut: "asyncio.Future[Any]", timeout: float, op: str, path: Optional[str]) -> None:
        """Fail fut with TimedOutError unless done within timeout seconds."""
        loop = self._loop
        q = self._q
        if q and timeout != self._timeout:
            self.answered()
        if q and timeout != self._timeout:
            # the client's timeout changed while calls are out: this one
            # would break the queue's order, so it gets a timer of its own
            handle = loop.call_later(timeout, _time_out, fut, timeout, op, path)
            fut.add_done_callback(lambda _f: handle.cancel())
            return
        self._timeout = timeout
        deadline = loop.time() + timeout
        q.append((deadline, fut, op, path))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def answered(self) -> None:
        """Drop answered calls off the front (replies come in order)."""
        q = self._q
        while q and q[0][1].done():
            q.popleft()

    def clear(self) -> None:
        self._q.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        q = self._q
        now = self._loop.time()
        while q:
            deadline, fut, op, path = q[0]
            if not fut.done():
                if deadline > now:
                    self._timer = self._loop.call_at(deadline, self._expire)
                    return
                _time_out(fut, self._timeout or 0.0, op, path)
            q.popleft()


def fresh(exc: HDF5AsyncError) -> HDF5AsyncError:
    """A new exception like exc, for one more caller (an exception instance
    raised in several places would collect their tracebacks)."""
    return type(exc)(exc.message, code=exc.code)


def _time_out(fut: "asyncio.Future[Any]", timeout: float, op: str, path: Optional[str]) -> None:
    # the request stays registered: its reply, when it comes, is dropped
    if not fut.done():
        fut.set_exception(TimedOutError("%s %s took more than %gs" % (op, path or "", timeout)))


class InFlight:
    """HDF5Client's requests in flight: ids, replies matched to their
    futures, failing them all on a loss, and the fast call path (the client
    provides the attributes and _policy, _check_open, _send_small, _call,
    _exchange)."""

    _loop: Optional[asyncio.AbstractEventLoop]
    _deadlines: Optional[Deadlines]
    _unstarted: "weakref.WeakSet[Any]"
    _write_lock: Optional[asyncio.Lock]
    _queued: int
    _protocol: Any
    _reconnecting: Any
    file: Optional[str]
    timeout: Optional[float]
    _pending: "collections.OrderedDict[int, asyncio.Future[Any]]"
    _sent: "collections.OrderedDict[int, Any]"
    _closed_exc: Any
    _unasked: Any
    _ids: Any
    reconnect: bool

    def _fail_pending(self, exc: HDF5AsyncError) -> None:
        if self._closed_exc is None:
            self._closed_exc = exc
        pending, self._pending = self._pending, collections.OrderedDict()
        self._sent = collections.OrderedDict()
        if self._deadlines is not None:
            self._deadlines.clear()  # every call watched is in pending
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(fresh(self._closed_exc))

    def _on_reply(self, reply: Reply) -> None:
        req_id, ok, body = reply
        if req_id is None:
            # The server could not read a request's id, or speaks unasked
            # (a connection over max_connections, protected mode): replies
            # are in request order, so it is the oldest request waiting.
            if not self._pending:
                exc = error_from_reply(body) if not ok else BadReplyError("unasked ok reply")
                log.debug("unasked reply: %s", exc)
                self._unasked = exc  # why the server is about to close: what calls will say
                return
            req_id = next(iter(self._pending))
        fut = self._pending.pop(req_id, None)
        self._sent.pop(req_id, None)
        if fut is None:
            log.debug("reply for unknown id %r dropped", req_id)
            return
        if ok:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("reply id=%s ok", req_id)
            resolve(fut, body)
        else:
            exc = error_from_reply(body)
            log.debug("reply id=%s error %s: %s", req_id, exc.code, exc.message)
            if not fut.done():
                fut.set_exception(exc)
        if self._deadlines is not None:
            self._deadlines.answered()

    def _register(self, op: str, path: Optional[str], pieces: List[Any],
                  fut: "asyncio.Future[Any]") -> None:
        req_id = next(self._ids)
        codec.set_request_id(pieces, req_id)
        self._pending[req_id] = fut
        if self.reconnect and op != "auth":
            self._sent[req_id] = (op, path, pieces, fut)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request id=%s op=%s path=%s", req_id, op, path)


    def _submit(self, op: str, path: Optional[str], durability: Optional[str],
                post: Optional[Callable[[Any], Any]], args: Dict[str, Any]) -> Any:
        """One call of a @fast method (inflight.py): on the client's own
        loop, with nothing in the way (no [cluster] routing, no reconnect
        under way, a small frame, nothing large being written, room in the
        send buffer), the request is encoded and queued now and its reply
        future returned; otherwise the coroutine _call always was."""
        loop = self._loop
        if args.get("file") is None and self.file is None and loop is not None and \
                asyncio._get_running_loop() is loop and self._reconnecting is None and \
                not self._unstarted:
            args.pop("file", None)
            try:
                self._policy(op, durability, args)
                self._check_open()
                pieces = self._encode(op, path, args)
            except Exception as e:
                return raise_later(e)
            protocol, lock = self._protocol, self._write_lock
            if 4 + int.from_bytes(pieces[0], "big") > SMALL_SEND or lock is None or \
                    lock.locked() or self._queued or protocol is None or protocol._paused:
                return later(self, self._exchange_post, (op, path, pieces, post), {})
            fut = Call(loop, post)
            self._send_small(op, path, pieces, fut)
            if self.timeout is not None:
                assert self._deadlines is not None
                self._deadlines.watch(fut, self.timeout, op, path)
            return fut
        return later(self, self._call_post, (post, op, path, durability, args), {})

    async def _call_post(self, post: Optional[Callable[[Any], Any]], op: str, path: Optional[str],
                         durability: Optional[str], args: Dict[str, Any]) -> Any:
        res = await self._call(op, path, durability, **args)
        return res if post is None else post(res)

    async def _exchange_post(self, op: str, path: Optional[str], pieces: List[Any],
                             post: Optional[Callable[[Any], Any]]) -> Any:
        res = await self._exchange(op, path, pieces)
        return res if post is None else post(res)

    def _encode(self, op: str, path: Optional[str], args: Dict[str, Any]) -> List[Any]:
        if path is not None and not isinstance(path, str):
            raise TypeError("path must be a str, not %s" % type(path).__name__)
        # encoded before registering: a TypeError leaves nothing behind
        return codec.encode_request(0, op, path, **args)
