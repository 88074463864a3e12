"""Cost of a FaultLink: round trips through a healed link vs direct, and reconnection after a reset.

(a) N ping-pong round trips over ipc from a blocking REQ socket to a running PongProc
    (REP), directly and through a FaultLink that was partitioned and healed first
    (so it counts messages and follows the framing, as in a test); rounds alternate,
    every loop runs in each round, medians and the median per-round ratio are reported.
    A tap (a FaultLink that records every message in a test's timeline, active here)
    runs the same loop: its round trip must cost at most TAP_RATIO x the healed link's.
    Another loop goes through the barest forwarder a thread of the test's process can be
    (poll, recv_into, send; no framing, no counts): the floor of any such link, to tell
    the link's own cost from the cost of one more thread and two more hops.
    Like roundtrip.py it runs twice: with the client, the link's thread and PongProc on
    one CPU (--cpu; reproducible: the cost of the work itself), and where the scheduler
    puts them (adds cross-CPU wake-ups, two more per round trip through the link).
(b) R resets of a link between a REQ socket (RECONNECT_IVL 2 ms, as make_sock sets)
    and a REP socket, both in this process: the time from calling reset() to the REP
    receiving the client's first message on its new connection; median and max. The
    client sends once its monitor reports the disconnect (a request sent before that
    may be taken by the dying connection and lost, as with any REQ socket).

Usage: python benchmarks/fault_link.py [--quick] [-n N] [--rounds R] [--resets R] [--cpu C]
"""
import contextlib
import json
import multiprocessing
import os
import select
import shutil
import socket
import sys
import tempfile
import threading

import _bench  # sets sys.path: repo root and docs/examples first
from _bench import STOP, WAIT, BenchError, median, perf_counter, target

import zmq

from zmq.utils.monitor import recv_monitor_message

from zmqprocesstest.faults import FaultLink, Tap
from zmqprocesstest.report import timeline
from pingpong.pongproc import PongProc

TARGET_RATIO = 1.5
TAP_RATIO = 1.1  # a tap's round trip vs the healed link's, in the same run
RESET_TARGET_MS = 20.0  # median, with a 2 ms reconnect interval


def req_socket(ctx, endpoint):
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.reconnect_ivl = 2
    sock.rcvtimeo = sock.sndtimeo = int(WAIT * 1000)
    sock.connect(endpoint)
    return sock


def loop(sock, n):
    """The fastest bare code: blocking multipart send/recv (RCVTIMEO bounds the wait)."""
    send, recv, dumps, loads = sock.send_multipart, sock.recv_multipart, json.dumps, json.loads
    start = perf_counter()
    for i in range(n):
        send([dumps(["ping", i]).encode()])
        if loads(recv()[-1]) != ["pong", i]:
            raise BenchError(f"unexpected reply to ping {i}")
    return perf_counter() - start


def bare_forwarder(path, target):
    """Listen on the unix socket *path* and forward its first connection to *target* and
    back, byte for byte, on a daemon thread: the least a Python link does per hop."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)

    def run():
        with listener:
            client, _ = listener.accept()
        server = socket.socket(socket.AF_UNIX)
        server.connect(target)
        with client, server:
            poller, peer = select.poll(), {client.fileno(): (client, server), server.fileno(): (server, client)}
            for sock in (client, server):
                poller.register(sock, select.POLLIN)
            buf = bytearray(65536)
            view = memoryview(buf)
            while True:
                for fd, _ in poller.poll():
                    src, dst = peer[fd]
                    n = src.recv_into(buf)
                    if not n:
                        return
                    dst.sendall(view[:n])

    threading.Thread(target=run, daemon=True).start()


def bench_roundtrips(n, rounds, tmpdir, cpus=None):
    """Alternate the two loops; with *cpus*, this thread (so PongProc and the link's
    thread, which it starts) runs on those CPUs only."""
    if cpus:
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus)
        try:
            return bench_roundtrips(n, rounds, tmpdir)
        finally:
            os.sched_setaffinity(0, allowed)
    endpoint = f"ipc://{tmpdir}/pong"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{tmpdir}/bare")  # the last run's
    bare_forwarder(f"{tmpdir}/bare", f"{tmpdir}/pong")
    proc = PongProc(endpoint)
    proc.daemon = True
    proc.start()
    ctx = zmq.Context()
    link = FaultLink(endpoint, endpoint=f"ipc://{tmpdir}/link")
    previous = timeline.activate(timeline.Timeline())  # as in a test: the tap records into it
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{tmpdir}/tap")
    tap = Tap(endpoint, endpoint=f"ipc://{tmpdir}/tap", name="client")
    direct, linked, tapped = req_socket(ctx, endpoint), req_socket(ctx, link.endpoint), req_socket(ctx, tap.endpoint)
    bare = None
    try:
        loop(direct, 200)  # warm-up: connections, caches
        loop(linked, 200)
        loop(tapped, 200)
        bare = req_socket(ctx, f"ipc://{tmpdir}/bare")  # now PongProc is bound: the forwarder connects to it
        loop(bare, 200)
        link.partition()
        link.heal()
        tap.partition()
        tap.heal()
        rows = {"direct": [], "link": [], "tap": [], "bare": []}  # us per round trip
        for r in range(rounds):
            order = [("direct", direct), ("link", linked), ("tap", tapped), ("bare", bare)]
            if r % 2:
                order.reverse()
            for name, sock in order:
                rows[name].append(loop(sock, n) / n * 1e6)
        stats = link.stats
        expected = 200 + rounds * n
        if (stats["to_server"].messages, stats["to_client"].messages) != (expected, expected):
            raise BenchError(f"the link counted {stats['to_server'].messages} requests and "
                             f"{stats['to_client'].messages} replies, expected {expected}")
        stats = tap.stats
        if (stats["to_server"].messages, stats["to_client"].messages) != (expected, expected):
            raise BenchError(f"the tap counted {stats['to_server'].messages} requests and "
                             f"{stats['to_client'].messages} replies, expected {expected}")
        entries = timeline.current().entries
        kept = min(2 * n, entries.maxlen)  # the timeline is bounded: the last round's messages, or as many as fit
        last = [e for e in list(entries)[-kept:] if e[2] == "client" and e[1] in timeline.MESSAGE_KINDS]
        if len(last) != kept or json.loads(last[-1][3][-1]) != ["pong", n - 1]:
            raise BenchError(f"the tap did not record the last round's last {kept} messages: {len(last)}")
        direct.send_multipart([json.dumps(STOP).encode()])
        proc.join(WAIT)
        if proc.exitcode != 0:
            raise BenchError(f"PongProc did not stop on its stop message (exit code {proc.exitcode})")
    finally:
        direct.close()
        linked.close()
        tapped.close()
        if bare is not None:
            bare.close()
        link.close()
        tap.close()
        timeline.activate(previous)
        ctx.term()
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    return rows


def bench_resets(resets, tmpdir):
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.linger = 0
    rep.rcvtimeo = rep.sndtimeo = int(WAIT * 1000)
    rep.bind(f"ipc://{tmpdir}/rep")
    link = FaultLink(f"ipc://{tmpdir}/rep", endpoint=f"ipc://{tmpdir}/reset-link")
    req = req_socket(ctx, link.endpoint)
    mon = req.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    times = []
    try:
        for i in range(resets + 1):
            start = perf_counter()
            if i:
                link.reset()
                if not mon.poll(int(WAIT * 1000)) or recv_monitor_message(mon)["event"] != zmq.EVENT_DISCONNECTED:
                    raise BenchError(f"the client did not see the disconnect of reset {i}")
            req.send(b"%d" % i)
            if rep.recv() != b"%d" % i:
                raise BenchError(f"unexpected request after reset {i}")
            if i:
                times.append((perf_counter() - start) * 1e3)
            rep.send(b"ok")
            req.recv()
        if link.stats.accepted != resets + 1:
            raise BenchError(f"expected {resets + 1} connections through the link, got {link.stats.accepted}")
    finally:
        req.disable_monitor()
        mon.close()
        req.close()
        rep.close()
        link.close()
        ctx.term()
    return times


def report_roundtrips(rows, where):
    med = {k: median(v) for k, v in rows.items()}
    paired = {name: median([b / a for a, b in zip(rows["direct"], rows[name])]) for name in rows}
    print(f"  {'':34s} {'us/rt':>8s} {'ratio':>6s} {'paired':>7s}  rounds (us/rt)")
    for name, label in (("direct", "direct REQ -> REP"), ("link", "REQ -> FaultLink -> REP"),
                        ("tap", "REQ -> Tap (recording) -> REP"), ("bare", "REQ -> bare forwarder -> REP")):
        print(f"  {label:34s} {med[name]:8.1f} {med[name] / med['direct']:6.2f} "
              f"{paired[name]:7.2f}  {', '.join(f'{v:.1f}' for v in rows[name])}")
    print("  (ratio: of the medians; paired: median of the per-round ratios; the bare forwarder"
          " is the floor of a link on a thread of this process)")
    tap_paired = median([b / a for a, b in zip(rows["link"], rows["tap"])])
    paired = paired["link"]
    ratio = med["link"] / med["direct"]
    target(f"round trip through a healed link <= {TARGET_RATIO} x direct, {where}", ratio <= TARGET_RATIO,
           f"ratio {ratio:.2f}, paired {paired:.2f}")
    tap_ratio = med["tap"] / med["link"]
    target(f"round trip through a tap <= {TAP_RATIO} x the healed link's, {where}", tap_ratio <= TAP_RATIO,
           f"ratio {tap_ratio:.2f}, paired {tap_paired:.2f}")


def run(args):
    n = args.n or (300 if args.quick else 5000)
    rounds = args.rounds or (3 if args.quick else 7)
    resets = args.resets or (10 if args.quick else 100)
    tmpdir = tempfile.mkdtemp(prefix="zpt-bench-")
    try:
        _bench.header("zmqprocesstest fault link benchmark")
        placements = [("on one CPU", {args.cpu}), ("where the scheduler puts them", None)]
        if args.cpu < 0:
            placements = placements[1:]
        for where, cpus in placements:
            print(f"(a) ping-pong round trips over ipc, REQ -> REP PongProc, direct and through a healed FaultLink, "
                  f"{where}{f' (cpu {args.cpu})' if cpus else ''}: {rounds} alternating rounds x {n}")
            report_roundtrips(bench_roundtrips(n, rounds, tmpdir, cpus), where)

        print(f"(b) {resets} resets of a link between REQ (RECONNECT_IVL 2 ms) and REP over ipc: "
              "reset() to the REP receiving the first request on the new connection")
        times = bench_resets(resets, tmpdir)
        print(f"  median {median(times):.2f} ms, max {max(times):.2f} ms, min {min(times):.2f} ms")
        target(f"reconnection after a reset, median <= {RESET_TARGET_MS:g} ms", median(times) <= RESET_TARGET_MS,
               f"median {median(times):.2f} ms")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    p = _bench.parser(__doc__.splitlines()[0], default_deadline=120)
    p.add_argument("-n", type=int, default=0, help="round trips per measurement (default 5000, quick 300)")
    p.add_argument("--rounds", type=int, default=0, help="alternating rounds of (a) (default 7, quick 3)")
    p.add_argument("--resets", type=int, default=0, help="resets in (b) (default 100, quick 10)")
    p.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)),
                   help="CPU for the pinned run of (a) (default: the last one; -1: only the unpinned run)")
    multiprocessing.set_start_method("fork", force=True)  # what the library and the other benchmarks assume
    sys.exit(_bench.main_wrapper(run, p.parse_args()))
