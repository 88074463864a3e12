"""Each wait_output finds the next match: a match consumes the output up to its end."""
import zmq

from zmqprocesstest import ProcessTestCase, process


def worker(endpoint):
    """Print a line for each request it pulls, until SIGINT."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(endpoint)
    print("worker: ready", flush=True)
    try:
        while True:
            print(f"request {pull.recv_json()} done", flush=True)
    except KeyboardInterrupt:
        pull.close(linger=0)
        ctx.term()


@process
class TestNextLine(ProcessTestCase):

    def test_each_wait_finds_the_next_line(self):
        proc = self.start_process(worker, self.endpoint)
        push = self.socket(zmq.PUSH, connect=self.endpoint, name="push")
        yield ("wait_output", proc, "worker: ready")
        push.send_json(1)
        first = (yield ("wait_output", proc, r"request (\d+) done"))[1]
        push.send_json(2)
        second = (yield ("wait_output", proc, r"request (\d+) done"))[1]  # the next line, not the first again
        self.assertEqual((first, second), ("1", "2"))  # the groups of each match
        again = yield ("wait_output", proc, r"request \d+ done", None, True)  # from_start: all of it
        self.assertEqual(again[0], "request 1 done")  # the matched text
