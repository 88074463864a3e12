"""The counter service: increments and reads a count that survives restarts.

It binds a ROUTER socket and speaks JSON in the last frame: ``['incr', n]`` is answered
with ``['ok', count]`` once the count is saved, ``['read', None]`` with ``['value',
count]``; ``['plzdiekthxbye', None]`` or SIGINT stop it. The count is kept in a state
file, read back when the service starts again.

``CounterProc(..., planted_bug=True)`` is the version with the bug the how-to
"Generate the scenarios" finds: it answers an increment at once and saves the count
only when it has been idle for 5 ms, and it does not save when it stops. Restarted
within 5 ms of an increment, it forgets that increment.
"""
import json
import multiprocessing
import os
import signal

import zmq

#: How long the buggy version waits, idle, before it saves the count (seconds).
SAVE_AFTER = 0.005


class CounterProc(multiprocessing.Process):
    """Counts on *endpoint*, keeping the count in *state_file*."""

    def __init__(self, endpoint, state_file, planted_bug=False):
        super().__init__(name="counter")
        self.endpoint = endpoint
        self.state_file = state_file
        self.planted_bug = planted_bug

    def run(self):
        context = sock = None
        try:
            context = zmq.Context()
            sock = context.socket(zmq.ROUTER)
            sock.linger = 0
            sock.bind(self.endpoint)
            self.serve(sock, self.load())
        except KeyboardInterrupt:
            pass  # stopped with SIGINT; the buggy version loses what it has not saved
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if sock is not None:
                sock.close()
            if context is not None:
                context.term()

    def load(self):
        try:
            with open(self.state_file) as f:
                return int(f.read())
        except FileNotFoundError:
            return 0

    def save(self, count):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(count))
        os.replace(tmp, self.state_file)  # never a half-written count

    def serve(self, sock, count):
        dirty = False
        while True:
            if self.planted_bug and dirty and not sock.poll(SAVE_AFTER * 1000):
                self.save(count)  # idle for 5 ms: save now
                dirty = False
                continue
            *header, body = sock.recv_multipart()
            msg_type, data = json.loads(body)
            if msg_type == "incr":
                count += data
                if self.planted_bug:
                    dirty = True  # answered now, saved later
                else:
                    self.save(count)
                reply = ["ok", count]
            elif msg_type == "read":
                reply = ["value", count]
            elif msg_type == "plzdiekthxbye":
                return
            else:
                reply = ["error", f"unknown message type: {msg_type}"]
            sock.send_multipart(header + [json.dumps(reply).encode()])
