"""The group coordinator of the stand-in: Kafka's classic consumer-group protocol.

States as in Kafka's GroupCoordinator: Empty → PreparingRebalance (a member joined, left
or timed out; every known member must send JoinGroup again within the rebalance timeout,
those that do not are removed) → CompletingRebalance (generation bumped, the leader got
the member list; SyncGroup waits for the leader's assignment) → Stable. JoinGroup v4+
without a member id is answered MEMBER_ID_REQUIRED with an id to join with. Heartbeats
during a rebalance answer REBALANCE_IN_PROGRESS; a member silent longer than its session
timeout is removed. Offset commits are checked as the coordinator checks them: accepted
from a member of the current generation while Stable or PreparingRebalance (so a member
can commit what it has done when a rebalance starts), REBALANCE_IN_PROGRESS while
CompletingRebalance, ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID otherwise, and from anyone
with generation -1 while the group is Empty.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from . import apis as E

EMPTY, PREPARING, COMPLETING, STABLE = "Empty", "PreparingRebalance", "CompletingRebalance", "Stable"


@dataclass
class Member:
    member_id: str
    session_timeout: float
    rebalance_timeout: float
    protocols: list[tuple[str, bytes]]
    last_seen: float = field(default_factory=time.monotonic)
    join: asyncio.Future[dict[str, Any]] | None = None
    sync: asyncio.Future[bytes] | None = None
    assignment: bytes = b""


@dataclass
class Group:
    group_id: str
    initial_delay: float
    state: str = EMPTY
    generation: int = 0
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    offsets: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)
    _rebalance: asyncio.TimerHandle | None = None
    _ready_at: float = 0.0

    # ---- joining -------------------------------------------------------------------

    def join(self, req: dict[str, Any], ids: itertools.count[int]) -> asyncio.Future[dict[str, Any]] | dict[str, Any]:
        loop = asyncio.get_running_loop()
        member_id = req["member_id"]
        protocols = [(p["name"], p["metadata"]) for p in req["protocols"]]
        if not member_id:
            member_id = f"{req.get('client_id') or 'consumer'}-{next(ids)}"
            self.pending.add(member_id)
            return self._join_error(E.MEMBER_ID_REQUIRED, member_id)
        if member_id not in self.members and member_id not in self.pending:
            return self._join_error(E.UNKNOWN_MEMBER_ID, member_id)
        if self.members and not self._protocols_overlap(protocols):
            return self._join_error(E.INCONSISTENT_GROUP_PROTOCOL, member_id)
        self.pending.discard(member_id)
        member = self.members.get(member_id)
        if member is None:
            member = self.members[member_id] = Member(
                member_id, req["session_timeout_ms"] / 1000, req["rebalance_timeout_ms"] / 1000, protocols)
        member.protocols = protocols
        member.last_seen = time.monotonic()
        if member.join is not None and not member.join.done():
            member.join.cancel()
        member.join = answer = loop.create_future()
        if self.state != PREPARING:
            self._prepare(self.initial_delay if self.state == EMPTY else 0.0)
        self._maybe_complete_join()
        return answer

    def _join_error(self, code: int, member_id: str) -> dict[str, Any]:
        return {"throttle_time_ms": 0, "error_code": code, "generation_id": -1, "protocol_name": None,
                "leader": "", "member_id": member_id, "members": []}

    def _protocols_overlap(self, protocols: list[tuple[str, bytes]]) -> bool:
        names = {name for name, _ in protocols}
        return all(names & {n for n, _ in m.protocols} for m in self.members.values())

    def _prepare(self, delay: float) -> None:
        """Start a rebalance: fail pending syncs, ask everyone to rejoin."""
        self.state = PREPARING
        for member in self.members.values():
            if member.sync is not None and not member.sync.done():
                member.sync.set_exception(GroupError(E.REBALANCE_IN_PROGRESS))
        timeout = max((m.rebalance_timeout for m in self.members.values()), default=0.0)
        loop = asyncio.get_running_loop()
        if self._rebalance is not None:
            self._rebalance.cancel()
        self._ready_at = time.monotonic() + delay
        self._rebalance = loop.call_later(max(delay, timeout), self._rebalance_deadline)
        if delay:
            loop.call_later(delay, self._maybe_complete_join)

    def _rebalance_deadline(self) -> None:
        """Members that did not rejoin in time are out."""
        for member_id in [m for m, member in self.members.items() if member.join is None or member.join.done()]:
            del self.members[member_id]
        self._ready_at = 0.0
        self._maybe_complete_join()
        if not self.members:
            self.state = EMPTY

    def _maybe_complete_join(self) -> None:
        if self.state != PREPARING or time.monotonic() < self._ready_at:
            return
        waiting = [m for m in self.members.values() if m.join is not None and not m.join.done()]
        if not waiting or len(waiting) != len(self.members):
            return
        if self._rebalance is not None:
            self._rebalance.cancel()
            self._rebalance = None
        self.generation += 1
        self.state = COMPLETING
        first = next(iter(self.members.values()))
        common = [n for n, _ in first.protocols if all(n in {p for p, _ in m.protocols}
                                                      for m in self.members.values())]
        self.protocol = common[0]
        if self.leader not in self.members:
            self.leader = first.member_id
        listing = [{"member_id": m.member_id, "group_instance_id": None,
                    "metadata": dict(m.protocols)[self.protocol]} for m in self.members.values()]
        for member in self.members.values():
            assert member.join is not None
            member.join.set_result({
                "throttle_time_ms": 0, "error_code": E.NONE, "generation_id": self.generation,
                "protocol_name": self.protocol, "leader": self.leader, "member_id": member.member_id,
                "members": listing if member.member_id == self.leader else [],
            })
            member.join = None

    # ---- syncing, heartbeats, leaving ------------------------------------------------

    def sync(self, req: dict[str, Any]) -> asyncio.Future[bytes] | int:
        member = self.members.get(req["member_id"])
        if member is None:
            return E.UNKNOWN_MEMBER_ID
        if req["generation_id"] != self.generation:
            return E.ILLEGAL_GENERATION
        if self.state == PREPARING:
            return E.REBALANCE_IN_PROGRESS
        member.last_seen = time.monotonic()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self.state == STABLE:
            future.set_result(member.assignment)
            return future
        member.sync = future
        if member.member_id == self.leader:
            given = {a["member_id"]: a["assignment"] for a in req["assignments"]}
            for m in self.members.values():
                m.assignment = given.get(m.member_id, b"")
            self.state = STABLE
            for m in self.members.values():
                if m.sync is not None and not m.sync.done():
                    m.sync.set_result(m.assignment)
        return future

    def heartbeat(self, req: dict[str, Any]) -> int:
        member = self.members.get(req["member_id"])
        if member is None:
            return E.UNKNOWN_MEMBER_ID
        if req["generation_id"] != self.generation:
            return E.ILLEGAL_GENERATION
        member.last_seen = time.monotonic()
        if self.state in (PREPARING, COMPLETING):
            return E.REBALANCE_IN_PROGRESS
        return E.NONE

    def leave(self, member_id: str) -> int:
        if self.members.pop(member_id, None) is None:
            return E.UNKNOWN_MEMBER_ID
        self._after_removal()
        return E.NONE

    def expire(self, now: float) -> None:
        """Remove members whose session ran out (not while they wait in a join)."""
        gone = [m for m, member in self.members.items()
                if (member.join is None or member.join.done()) and now - member.last_seen > member.session_timeout]
        for member_id in gone:
            del self.members[member_id]
        if gone:
            self._after_removal()

    def _after_removal(self) -> None:
        if not self.members:
            self.state = EMPTY
            self.leader = None
            if self._rebalance is not None:
                self._rebalance.cancel()
            return
        if self.state != PREPARING:
            self._prepare(0.0)
        self._maybe_complete_join()

    # ---- offsets ---------------------------------------------------------------------

    def commit_error(self, generation: int, member_id: str) -> int:
        if generation < 0 and self.state == EMPTY:
            return E.NONE
        if self.state == COMPLETING:
            return E.REBALANCE_IN_PROGRESS
        if member_id not in self.members:
            return E.UNKNOWN_MEMBER_ID
        if generation != self.generation:
            return E.ILLEGAL_GENERATION
        return E.NONE


class GroupError(Exception):
    """A group call answered with an error code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
