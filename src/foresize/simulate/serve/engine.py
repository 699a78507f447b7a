"""The serving engine: a request trace through one admission queue onto replicas that batch
continuously, as vLLM does, with a replica scaler deciding how many replicas run.

Per replica, one engine iteration runs every decoding sequence one token and, in the
same iteration, up to ``max_batched_tokens - decoding`` prompt tokens (chunked prefill,
Sarathi-Serve / vLLM V1). A request is admitted from the shared FIFO queue when the
replica has fewer than ``max_num_seqs`` sequences and its KV cache has room for the
prompt; a decode step that would overflow the cache preempts the most recently admitted
sequence, which goes back to the head of the queue and is recomputed later (vLLM's
recompute preemption). The first output token comes with the end of the prompt's last
prefill chunk (TTFT); each later token with one decode iteration (TPOT).

Speed: iterations are not simulated one by one. Between events (an admission, the end of
a prompt's prefill, the end of a sequence, the KV cache filling up) a replica's batch is
fixed, so iteration ``j`` of a segment takes ``alpha + beta (C0 + b j)`` and ``k``
iterations take ``k alpha + beta (k C0 + b k (k - 1) / 2)``: one closed form per segment.
An arrival that an iterating replica could admit cuts its segment at the end of the
iteration in progress (a quadratic's root). Events are O(requests), not O(tokens), and
each costs O(log replicas): idle replicas wait in a heap (an over-provisioned run has
tens at every arrival), an arrival with none idle finds the least-held busy replica by
one C-level ``min`` over the ready ones, and a tick sums the queued work as one list
slice while the queue is a range of arrivals (an overloaded run queues thousands). Each
segment is one Python-level event of a few microseconds; every float is computed by the
same expression in the same order as before these shortcuts
(``tests/simulate/test_serve_digest.py``).

Scaling: every ``tick_s`` the engine samples its metrics (queue, in-flight requests, KV
usage, busy time, arriving tokens) and asks the policy for a replica count. New replicas
are ready ``startup_s`` later; removals take starting replicas first, then drain the
least loaded ready ones (they admit nothing and leave when empty). Every replica that
exists is billed, starting and draining ones included.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappop, heappush
from operator import attrgetter
from typing import Protocol

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError
from foresize.simulate.serve.replica import IDLE_POWER_FRACTION, ReplicaModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
INF = math.inf
KV_WATERMARK = 0.01  # vLLM keeps 1 % of the KV blocks free at admission
_KV = attrgetter("kv")


@dataclass(frozen=True, slots=True)
class Trace:
    """Requests by arrival: seconds from the start, prompt and output tokens."""

    arrival_s: FloatArray
    input_tokens: IntArray
    output_tokens: IntArray

    @property
    def n(self) -> int:
        """Requests."""
        return int(self.arrival_s.size)


@dataclass(frozen=True, slots=True)
class TickView:
    """What a policy sees at a tick: the metric history so far, one value per tick."""

    t: int  # tick index
    now_s: float
    ready: int
    starting: int
    queue: FloatArray  # requests waiting in the admission queue
    in_flight: FloatArray  # waiting + running requests
    kv_used: FloatArray  # KV tokens in use, summed over ready replicas
    busy: FloatArray  # busy replica-seconds per second (sum of GPU utilisations)
    work: FloatArray  # arriving work, replica-seconds per second (see ``work_per_request``)
    wait: FloatArray  # how long the queue's head has waited (s; 0 for an empty queue)
    queued_work: FloatArray  # work waiting in the queue (replica-seconds)

    @property
    def current(self) -> int:
        """Replicas asked for so far (ready + starting)."""
        return self.ready + self.starting


class Policy(Protocol):
    """Decides the replica count at each tick."""

    def start(self, n_ticks: int, tick_s: float) -> int:
        """Reset for a run of ``n_ticks`` ticks; return the replicas ready at time 0."""
        ...

    def desired(self, view: TickView) -> int:
        """Replicas wanted from now on."""
        ...


@dataclass(slots=True)
class _Replica:
    index: int
    created_s: float
    ready_s: float
    removed_s: float = INF
    draining: bool = False
    it: int = 0  # iterations completed
    kv: int = 0  # KV tokens held (reserved prompts + decoded tokens)
    pending: int = 0  # reserved prompt tokens not prefilled yet (held, not read)
    n_seqs: int = 0
    n_dec: int = 0
    busy_s: float = 0.0
    idle: bool = False  # listed in the run's idle heap (the entry is checked when read)
    heap: list[tuple[int, int, int]] = field(default_factory=list)  # (finish_it, req, epoch)
    prefill: deque[list[int]] = field(default_factory=deque)  # [req, remaining tokens]
    stack: list[int] = field(default_factory=list)  # admission order, for preemption
    # the segment in progress
    version: int = 0
    t0: float = 0.0
    end: float = INF
    k: int = 0
    alpha: float = 0.0
    beta: float = 0.0
    c0: int = 0
    g: int = 0
    q: int = 0
    multi: bool = False


@dataclass(slots=True)
class RunResult:
    """Per-request outcomes and per-tick series of one run."""

    first_token_s: FloatArray  # absolute time of the first token (NaN: never served)
    finish_s: FloatArray
    preemptions: IntArray
    replica_s: float  # replica-seconds billed
    spans: FloatArray  # (replicas, 2): when each replica was created and left (or the end)
    busy_s: float
    end_s: float
    n_cold_starts: int
    tick_s: float
    ticks: dict[str, FloatArray]


def work_per_request(model: ReplicaModel, trace: Trace, *, ref_batch: int = 32) -> FloatArray:
    """Replica-seconds a request costs at a typical operating point.

    Its prompt at full-chunk prefill speed plus its output tokens at the per-sequence
    share of a decode step of ``ref_batch`` sequences of the trace's mean context. A
    weighting only (the capacity a policy sizes with is calibrated on the engine).
    """
    chunk = model.spec.max_batched_tokens
    prefill_tok = model.iteration_s(chunk, chunk) / chunk
    context = int(trace.input_tokens.mean() + trace.output_tokens.mean() / 2) if trace.n else 1
    decode_tok = model.decode_step_s(ref_batch, context) / ref_batch
    work: FloatArray = trace.input_tokens * prefill_tok + trace.output_tokens * decode_tok
    return work


class ServeEngine:
    """One run of a trace on replicas of ``model`` under ``policy``."""

    def __init__(self, model: ReplicaModel, trace: Trace, *, tick_s: float = 5.0,
                 max_replicas: int = 1_000, min_replicas: int = 1) -> None:
        if not tick_s > 0:
            raise InputError(f"tick must be > 0 s, got {tick_s}")
        self.model = model
        self.trace = trace
        self.tick_s = tick_s
        self.max_replicas, self.min_replicas = max_replicas, min_replicas
        self.work = work_per_request(model, trace)

    def run(self, policy: Policy, *, on_tick: Callable[[int], None] | None = None) -> RunResult:
        """Simulate the whole trace; every request finishes (the queue never drops)."""
        return _Run(self, policy).go()


class _Run:
    """The state of one run (a class so the hot loop reads attributes, not closures)."""

    def __init__(self, engine: ServeEngine, policy: Policy) -> None:
        m = engine.model
        tr = engine.trace
        self.engine, self.policy, self.model = engine, policy, m
        self.arr = tr.arrival_s.tolist()
        self.inp = tr.input_tokens.tolist()
        self.out = tr.output_tokens.tolist()
        n = tr.n
        self.n = n
        self.need = list(self.out)  # output tokens still to produce
        self.eff = list(self.inp)  # prompt to (re)compute on the next admission
        self.dec_start = [0] * n
        self.epoch = [0] * n
        self.first = [math.nan] * n
        self.finish = [math.nan] * n
        self.preempt = [0] * n
        self.queue: deque[int] = deque()
        # preempted requests at the queue's head; behind them the queue is the arrivals
        # not yet admitted, in order (a range of indices: its work is a slice to sum)
        self.requeued = 0
        self.replicas: list[_Replica] = []
        self.live: list[_Replica] = []  # not yet removed (pruned at each tick)
        # the live replicas not draining, and those of them ready until ``ready_until`` (the
        # next start-up's end): an arrival looks for the least loaded one among these only;
        # ``ready_since`` is the latest start-up's end among them (see ``_dispatch``)
        self.serving: list[_Replica] = []
        self.ready: list[_Replica] = []
        self.ready_until = INF
        self.ready_since = -INF
        # indices of idle ready replicas, lowest first: an arrival takes the first idle one
        # in creation order without scanning every replica (entries may be stale)
        self.idle: list[int] = []
        self.busy_gone = 0.0  # busy seconds of the replicas pruned from ``live``
        self.events: list[tuple[float, int, int, int]] = []  # (time, seq, replica, version)
        self.seq = 0
        self.done = 0
        self.cap = m.kv_capacity_tokens
        self.admit_cap = int(self.cap * (1 - KV_WATERMARK))
        self.budget = m.spec.max_batched_tokens
        self.max_seqs = m.spec.max_num_seqs
        self.wread = m.weight_read_s
        self.serial = 1.0 - m.spec.overlap  # share of the shorter of weights/compute not hidden
        self.per_tok = m.per_token_s
        self.comm_tok = m.allreduce_s_per_token  # added, not hidden (as ReplicaModel.iteration_s)
        self.attn = m.attention_s_per_token2
        self.fixed = m.spec.overhead_s + m.allreduce_fixed_s
        self.beta = m.kv_read_s
        # alpha of an iteration of b decoding sequences and no prompt tokens, by b: the
        # expression of ``_plan``'s prefill branch with q = 0 and attention = 0.0
        self.alpha_decode = [
            self.fixed + b * self.comm_tok + (
                c + self.serial * self.wread if (c := b * self.per_tok + 0.0 * self.attn)
                > self.wread else self.wread + self.serial * c)
            for b in range(self.max_seqs + 1)]
        self.cold_starts = 0
        too_big = np.flatnonzero(tr.input_tokens + 1 > self.admit_cap)
        if too_big.size:
            i = int(too_big[0])
            raise InputError(
                f"request {i + 1}: {self.eff[i]:,} prompt tokens exceed the replica's KV "
                f"capacity of {self.cap:,} tokens", hint="use more TP, a bigger device or a "
                "smaller dtype")

    # --- replicas ----------------------------------------------------------------------

    def _add(self, now: float, ready_s: float) -> None:
        r = _Replica(len(self.replicas), now, ready_s)
        self.replicas.append(r)
        self.live.append(r)
        self.serving.append(r)
        self._ready(now)
        if ready_s > now:
            self.cold_starts += 1
            self._push(ready_s, r)  # a wake-up at ready time
        else:
            r.idle = True
            heappush(self.idle, r.index)

    def _ready(self, now: float) -> None:
        """List the serving replicas ready at ``now``; note when the next one will be."""
        self.ready = ready = [r for r in self.serving if r.ready_s <= now]
        self.ready_until = min((r.ready_s for r in self.serving if r.ready_s > now),
                               default=INF)
        self.ready_since = max((r.ready_s for r in ready), default=-INF)

    def _push(self, when: float, r: _Replica) -> None:
        self.seq += 1
        heappush(self.events, (when, self.seq, r.index, r.version))

    def _preempt(self, r: _Replica) -> None:
        """Evict the most recently admitted live sequence back to the queue's head."""
        while r.stack:
            i = r.stack.pop()
            if not math.isnan(self.finish[i]):
                continue
            for item in r.prefill:
                if item[0] == i:
                    r.prefill.remove(item)
                    r.kv -= self.eff[i]
                    r.pending -= item[1]
                    break
            else:
                made = r.it - self.dec_start[i]
                r.kv -= self.eff[i] + made
                self.need[i] -= made
                self.eff[i] += made + 1
                self.epoch[i] += 1
                r.n_dec -= 1
            r.n_seqs -= 1
            self.preempt[i] += 1
            self.queue.appendleft(i)
            self.requeued += 1
            return

    def _plan(self, r: _Replica, now: float) -> None:
        """Start the next segment of ``r`` at ``now`` (or leave it idle).

        The hottest function of a run: admission is inlined, attributes are read into
        locals once, and a segment without prefill takes its per-iteration time from
        ``alpha_decode`` (the same expression, evaluated once per batch size).
        """
        version = r.version = r.version + 1
        kv = r.kv
        queue = self.queue
        if queue and not r.draining and r.ready_s <= now:
            eff, cap, max_seqs, prefill, stack = self.eff, self.admit_cap, self.max_seqs, \
                r.prefill, r.stack
            n_seqs, pending, requeued = r.n_seqs, r.pending, self.requeued
            while queue and n_seqs < max_seqs:
                i = queue[0]
                e = eff[i]
                if kv + e > cap:
                    break
                queue.popleft()
                if requeued:
                    requeued -= 1
                kv += e
                pending += e
                n_seqs += 1
                prefill.append([i, e])
                stack.append(i)
            r.kv, r.n_seqs, r.pending = kv, n_seqs, pending
            self.requeued = requeued
        b = r.n_dec
        cap = self.cap
        if b and kv + b > cap:
            while r.n_dec and r.kv + r.n_dec > cap:
                self._preempt(r)
            b, kv = r.n_dec, r.kv
        prefill = r.prefill
        if b == 0 and not prefill:
            r.end, r.k = INF, 0
            if r.draining:
                if r.n_seqs == 0 and r.removed_s == INF:
                    r.removed_s = now
            elif not r.idle:
                r.idle = True
                heappush(self.idle, r.index)
            return
        k = 1 << 40
        if b:
            heap, epoch = r.heap, self.epoch
            top = heap[0]
            while epoch[top[1]] != top[2]:
                heappop(heap)
                top = heap[0]
            k = top[0] - r.it
            fits = (cap - kv) // b
            if fits < k:
                k = fits
        room = self.budget - b
        if prefill and room > 0:
            eff = self.eff
            q, attention, multi = 0, 0.0, False
            i, rem = prefill[0]
            if rem >= room:
                q = room
                whole = rem // room
                if whole < k:
                    k = whole
                attention = q * (eff[i] - rem + q / 2)
            else:
                multi, k = True, 1
                for i, rem in prefill:
                    piece = rem if rem < room - q else room - q
                    attention += piece * (eff[i] - rem + piece / 2)
                    q += piece
                    if q >= room:
                        break
            compute = (b + q) * self.per_tok + attention * self.attn
            wread = self.wread
            alpha = self.fixed + (b + q) * self.comm_tok + (
                compute + self.serial * wread if compute > wread
                else wread + self.serial * compute)
            r.q, r.multi = q, multi
            g = b + q
        else:
            alpha = self.alpha_decode[b]
            r.q = 0
            g = b
        c0 = kv - r.pending  # cached tokens read; each iteration caches g = b + q more
        r.t0, r.k, r.alpha, r.c0, r.g = now, k, alpha, c0, g
        duration = k * alpha + self.beta * (k * c0 + g * k * (k - 1) / 2)
        end = r.end = now + duration
        r.busy_s += duration
        seq = self.seq = self.seq + 1
        heappush(self.events, (end, seq, r.index, version))

    def _cut(self, r: _Replica, now: float) -> None:
        """End ``r``'s segment at the iteration in progress at ``now`` (to admit)."""
        if r.k <= 1 or r.end <= now:
            return
        g, a, beta = r.g, r.alpha, self.beta
        dt = now - r.t0
        # iterations j whose cumulative time <= dt: (beta g / 2) j^2 + (a + beta C0 - beta g / 2) j
        qa, qb = beta * g / 2, a + beta * r.c0 - beta * g / 2
        j = dt / qb if qa == 0 else (-qb + math.sqrt(qb * qb + 4 * qa * dt)) / (2 * qa)
        k = min(r.k, int(j) + 1)
        if k >= r.k:
            return
        old = r.end
        r.k = k
        r.end = r.t0 + k * a + beta * (k * r.c0 + g * k * (k - 1) / 2)
        r.busy_s -= old - r.end
        r.version += 1
        self._push(r.end, r)

    def _finish_segment(self, r: _Replica) -> None:
        """Apply the segment that just ended at ``r.end``.

        Hot: the replica's counters are carried in locals and stored once; a prompt whose
        last chunk this segment computed gets its first token here (and finishes if it
        wanted one token, or starts decoding).
        """
        now, k = r.end, r.k
        it = r.it = r.it + k
        n_dec, n_seqs = r.n_dec, r.n_seqs
        kv = r.kv + n_dec * k
        done = 0
        heap = r.heap
        q = r.q
        if q:
            prefill = r.prefill
            if not r.multi:
                q *= k
            pending = r.pending
            first, need, eff = self.first, self.need, self.eff
            while q and prefill:
                item = prefill[0]
                rem = item[1]
                piece = rem if rem < q else q
                rem = item[1] = rem - piece
                pending -= piece
                q -= piece
                if rem == 0:
                    prefill.popleft()
                    i = item[0]
                    if math.isnan(first[i]):
                        first[i] = now
                    left = need[i] = need[i] - 1
                    if left == 0:
                        kv -= eff[i]
                        n_seqs -= 1
                        self.finish[i] = now
                        done += 1
                    else:
                        self.dec_start[i] = it
                        n_dec += 1
                        heappush(heap, (it + left, i, self.epoch[i]))
            r.pending = pending
        if heap and heap[0][0] <= it:
            epoch, eff, dec_start, finish = self.epoch, self.eff, self.dec_start, self.finish
            while heap and heap[0][0] <= it:
                _, i, e = heappop(heap)
                if epoch[i] != e:
                    continue
                kv -= eff[i] + (it - dec_start[i])
                n_dec -= 1
                n_seqs -= 1
                finish[i] = now
                done += 1
        r.kv, r.n_dec, r.n_seqs = kv, n_dec, n_seqs
        self.done += done

    def _dispatch(self, now: float) -> None:
        """The queue's head just arrived: wake an idle replica or cut a busy one.

        The first idle replica in creation order takes it. The idle heap finds that one
        without a scan (an over-provisioned run has tens of idle replicas at each
        arrival); entries of replicas that have since turned busy, draining or removed are
        dropped on the way. Only when none is idle (or, never in practice, the first idle
        one cannot take the head) are all replicas scanned: the busy one with the most
        free KV cache is cut.
        """
        head = self.eff[self.queue[0]]
        idle, replicas = self.idle, self.replicas
        while idle:
            r = replicas[idle[0]]
            if r.end != INF or r.draining or r.removed_s != INF or r.ready_s > now:
                heappop(idle)
                r.idle = False
                continue
            if self.admit_cap - r.kv < head or r.n_seqs >= self.max_seqs:
                break
            heappop(idle)
            r.idle = False
            self._plan(r, now)
            return
        # the most free KV (the first of equals) = the least held; free >= head as kv <= most
        max_seqs, most = self.max_seqs, self.admit_cap - head
        if now >= self.ready_until:
            self._ready(now)
        ready = self.ready
        if not idle and ready and now > self.ready_since:
            # no replica is idle (each idle one is listed in ``idle`` once its wake-up at
            # ready time has run: not yet when it is ready at this very instant), so the
            # loop below would cut the first least-held one unless it is full: a C-level min
            r = min(ready, key=_KV)
            if r.kv <= most and r.n_seqs < max_seqs:
                self._cut(r, now)
                return
        best, best_kv = None, self.admit_cap + 1
        for r in ready:
            kv = r.kv
            if kv > most or r.n_seqs >= max_seqs:
                continue
            if r.end == INF:
                self._plan(r, now)
                return
            if kv < best_kv:
                best, best_kv = r, kv
        if best is not None:
            self._cut(best, now)

    # --- scaling -----------------------------------------------------------------------

    def _scale(self, want: int, now: float) -> None:
        e = self.engine
        want = max(e.min_replicas, min(want, e.max_replicas))
        if self.queue:
            want = max(want, 1)  # a request waits: scale from zero (Knative's activator)
        live = self.serving
        if want > len(live):
            for _ in range(want - len(live)):
                self._add(now, now + self.model.startup_s)
            return
        extra = len(live) - want
        if not extra:
            return
        starting = sorted((r for r in live if r.ready_s > now), key=lambda r: -r.created_s)
        for r in starting[:extra]:
            r.draining, r.removed_s = True, now
            r.version += 1
        extra -= min(extra, len(starting))
        ready = sorted((r for r in live if r.ready_s <= now), key=lambda r: r.n_seqs)
        for r in ready[:extra]:
            r.draining = True
            if r.n_seqs == 0 and r.end == INF:
                r.removed_s = now
        self.serving = [r for r in live if not r.draining]
        self._ready(now)

    # --- the loop ----------------------------------------------------------------------

    def go(self) -> RunResult:
        e, policy = self.engine, self.policy
        tick = e.tick_s
        last = self.arr[-1] if self.n else 0.0
        n_ticks_hint = int(last / tick) + 2
        for _ in range(max(policy.start(n_ticks_hint, tick), 0 if self.n == 0 else 1)):
            self._add(0.0, 0.0)
        keys = ("queue", "in_flight", "kv_used", "busy", "work", "wait", "queued_work",
                "ready", "starting", "replicas")
        store = np.zeros((len(keys), max(n_ticks_hint, 16)))
        n_t = 0
        work = e.work.tolist()
        next_tick, a, tick_work, busy_mark = tick, 0, 0.0, 0.0
        events, replicas, arr, queue = self.events, self.replicas, self.arr, self.queue
        arr.append(INF)  # the arrival after the last: never
        plan, finish_segment, dispatch = self._plan, self._finish_segment, self._dispatch
        n = self.n
        while self.done < n:
            t_arr = arr[a]
            t_ev = events[0][0] if events else INF
            if next_tick <= t_arr and next_tick <= t_ev:
                now = next_tick
                gone = [r for r in self.live if r.removed_s != INF]
                if gone:
                    self.busy_gone += sum(r.busy_s for r in gone)
                    self.live = [r for r in self.live if r.removed_s == INF]
                live = self.live
                busy = self.busy_gone + sum(r.busy_s for r in live)
                ready = [r for r in live if r.ready_s <= now]
                starting = sum(1 for r in live if r.ready_s > now and not r.draining)
                running = sum(r.n_seqs for r in ready)
                n_ready = sum(1 for r in ready if not r.draining)
                if n_t == store.shape[1]:
                    store = np.concatenate([store, np.zeros_like(store)], axis=1)
                waiting = len(queue)
                # the same floats summed in the same order; a slice when the queue is a
                # range of arrivals (an overloaded run queues thousands, every tick)
                queued = sum(map(work.__getitem__, queue)) if self.requeued \
                    else sum(work[a - waiting:a])
                store[:, n_t] = (waiting, waiting + running,
                                 sum(r.kv for r in ready), (busy - busy_mark) / tick,
                                 tick_work / tick, now - arr[queue[0]] if queue else 0.0,
                                 queued, n_ready, starting, len(ready) + starting)
                n_t += 1
                busy_mark, tick_work = busy, 0.0
                s = store[:, :n_t]
                view = TickView(n_t - 1, now, n_ready, starting, *s[:7])
                self._scale(policy.desired(view), now)
                for r in live:  # replicas that just turned ready or idle may admit
                    if r.end == INF and r.ready_s <= now and queue and not r.draining \
                            and r.removed_s == INF:
                        plan(r, now)
                next_tick += tick
            elif t_arr <= t_ev:
                if queue:  # nothing to dispatch: take every arrival before the next event
                    while True:
                        queue.append(a)
                        tick_work += work[a]
                        a += 1
                        t_arr = arr[a]
                        if t_arr > t_ev or t_arr >= next_tick:
                            break
                else:
                    queue.append(a)
                    tick_work += work[a]
                    a += 1
                    dispatch(t_arr)
            else:
                when, _, index, version = heappop(events)
                r = replicas[index]
                if version != r.version:
                    continue
                if r.end == when and r.k:
                    finish_segment(r)
                if r.removed_s == INF or r.n_seqs:
                    plan(r, when)
        end = max(max(self.finish, default=0.0), last)
        spans = np.asarray([(r.created_s, min(r.removed_s, end)) for r in replicas
                            if r.created_s < end], dtype=np.float64).reshape(-1, 2)
        billed = float((spans[:, 1] - spans[:, 0]).sum())
        busy = sum(r.busy_s for r in replicas)
        return RunResult(np.asarray(self.first), np.asarray(self.finish),
                         np.asarray(self.preempt, dtype=np.int64), billed, spans, busy, end,
                         self.cold_starts, tick,
                         {k: store[i, :n_t].copy() for i, k in enumerate(keys)})


def billed_s(result: RunResult, since_s: float = 0.0) -> float:
    """Replica-seconds billed from ``since_s`` on (a warm-up before it is not scored)."""
    start = np.maximum(result.spans[:, 0], since_s)
    return float(np.clip(result.spans[:, 1] - start, 0.0, None).sum())


def energy_kwh(model: ReplicaModel, result: RunResult, since_s: float = 0.0) -> float:
    """Board energy from ``since_s`` on: busy time at full power, the rest of the billed
    time at idle power (busy time before ``since_s`` is taken from the per-tick series).
    """
    billed = billed_s(result, since_s)
    before = float(result.ticks["busy"][: int(since_s // result.tick_s)].sum()) * result.tick_s
    busy = min(max(result.busy_s - before, 0.0), billed)
    return model.power_w * (busy + IDLE_POWER_FRACTION * (billed - busy)) / 3.6e6
