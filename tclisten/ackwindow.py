"""The ack window of one channel: the only code that acks or rejects a delivery.

Deliveries enter in the order the broker sent them (:meth:`AckWindow.add`) and leave once
they are *settled*: handled, or re-published for a retry or parked (:meth:`AckWindow.done`),
or given back (:meth:`AckWindow.give_back`).  Two ways out, one rule: **never ack a delivery
that is not settled**.

- In order (the common case), a contiguous run of settled deliveries at the head of the
  window is acked with one ``basic_ack(tag, multiple=True)``: half the broker's work per
  message (PERFORMANCE.md).  A run is flushed when it is ``batch`` long, or ``max_delay``
  seconds after its first delivery settled, whichever comes first.
- Out of order (an earlier delivery is still in a slow handler), a settled delivery is acked
  on its own (``basic_ack(tag)``) once it waited ``max_delay`` seconds, so one slow handler
  neither holds finished work hostage (it would run again after a stop or a reconnect) nor
  fills the prefetch window until the broker stops sending.

A ``multiple`` ack covers only tags up to the last of the head run, and every tag there is
settled, so it never reaches a delivery still running.  Tags acked or rejected on their own
before are no longer unacked at the broker, so covering them again is harmless.

>>> class Msg:
...     def __init__(self, tag): self.tag, self.calls = tag, []
...     def ack(self, multiple=False): self.calls.append(("ack", multiple))
...     def reject(self, requeue): self.calls.append(("reject", requeue))
>>> window = AckWindow(batch=2, max_delay=1.0)
>>> a, b, c = (window.add(Msg(n)) for n in (1, 2, 3))
>>> window.done(b, now=0.0); window.flush(now=0.5); b.message.calls     # a still runs
[]
>>> window.flush(now=1.5); b.message.calls                             # b waited a second
[('ack', False)]
>>> window.done(a, now=2.0); window.done(c, now=2.0); c.message.calls  # head run of 3: one ack
[('ack', True)]
>>> window.acked, len(window)
(3, 0)
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable

__all__ = ["AckWindow", "Slot"]


class Slot:
    """One delivery in the window."""

    __slots__ = ("message", "settled", "sent", "in_run", "settled_at")

    def __init__(self, message: Any) -> None:
        self.message = message  # has ack(multiple=...) and reject(requeue=...)
        self.settled = False
        self.sent = False  # acked or rejected on its own already
        self.in_run = False  # part of the head run: the run's ack covers it
        self.settled_at = 0.0


class AckWindow:
    """Acks of one channel; see the module docstring.  Used from one thread at a time."""

    def __init__(self, *, batch: int, max_delay: float = 1.0, each: bool = False,
                 on_ack: Callable[[int], None] | None = None) -> None:
        self.batch = max(1, batch)
        self.max_delay = max_delay
        self.each = each  # transports that ignore ``multiple`` (memory://): ack one by one
        self.on_ack = on_ack  # told how many deliveries each ack settled (stats)
        self.acked = 0
        self.rejected = 0
        self._added = 0
        self._slots: deque[Slot] = deque()
        self._run: Slot | None = None  # last slot of the settled head run, not yet acked
        self._run_length = 0
        self._run_since = 0.0
        self._late: list[Slot] = []  # settled behind an unsettled one, not yet acked

    def __len__(self) -> int:
        """Deliveries not yet acked or rejected."""
        return self._added - self.acked - self.rejected

    @property
    def unsettled(self) -> int:
        return sum(1 for slot in self._slots if not slot.settled)

    def add(self, message: Any) -> Slot:
        slot = Slot(message)
        self._slots.append(slot)
        self._added += 1
        return slot

    def done(self, slot: Slot, *, now: float | None = None) -> None:
        """``slot`` is settled: handled, retried or parked.  Acks when a batch is full."""
        slot.settled = True
        slot.settled_at = time.monotonic() if now is None else now
        if self._slots and self._slots[0] is slot:
            self._advance(slot.settled_at)
        else:
            self._late.append(slot)
        if self._run_length >= self.batch:
            self._ack_run()

    def give_back(self, slot: Slot) -> None:
        """Return an unstarted (or unhandleable) delivery to the queue at once."""
        if slot.sent or slot.settled:
            return
        slot.message.reject(requeue=True)
        slot.sent = slot.settled = True
        self.rejected += 1
        if self._slots and self._slots[0] is slot:
            self._advance(time.monotonic())

    def flush(self, *, now: float | None = None, force: bool = False) -> None:
        """Ack what waited long enough (or everything settled, with ``force``)."""
        now = time.monotonic() if now is None else now
        if self._run_length and (force or now - self._run_since >= self.max_delay):
            self._ack_run()
        if self._late and (force or now - self._late[0].settled_at >= self.max_delay):
            self._ack_late(now, force)

    def forget(self) -> int:
        """The channel is gone: the broker has every unacked delivery back.  Returns how
        many were forgotten."""
        count = len(self)
        self._added = self.acked + self.rejected
        self._slots.clear()
        self._late.clear()
        self._run, self._run_length = None, 0
        return count

    # -- inside -------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        slots = self._slots
        while slots and slots[0].settled:
            head = slots.popleft()
            if head.sent:
                continue
            if self.each:
                self._send(head, multiple=False)
                continue
            if not self._run_length:
                self._run_since = now
            head.in_run = True
            self._run = head
            self._run_length += 1

    def _ack_run(self) -> None:
        run, length = self._run, self._run_length
        self._run, self._run_length = None, 0
        if run is None:
            return
        run.message.ack(multiple=not self.each)
        run.sent = True
        self.acked += length
        if self.on_ack is not None:
            self.on_ack(length)

    def _ack_late(self, now: float, force: bool) -> None:
        keep = []
        for slot in self._late:
            if slot.sent or slot.in_run:
                continue  # the head run reached it meanwhile: the run's ack covers it
            if force or now - slot.settled_at >= self.max_delay:
                self._send(slot, multiple=False)
            else:
                keep.append(slot)
        self._late = keep

    def _send(self, slot: Slot, *, multiple: bool) -> None:
        slot.message.ack(multiple=multiple)
        slot.sent = True
        self.acked += 1
        if self.on_ack is not None:
            self.on_ack(1)
