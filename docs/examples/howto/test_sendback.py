"""The miniature send-back loop of the Design page does what it says."""
from zmqprocesstest import ProcessTestCase
from howto.sendback import run_events


def fail():
    raise KeyError("no such thing")


class TestSendBackLoop(ProcessTestCase):

    def test_result_is_sent_back(self):
        seen = []

        def conversation():
            seen.append((yield ("double", 21)))

        run_events({"double": lambda n: 2 * n}, conversation())
        self.assertEqual(seen, [42])

    def test_error_is_raised_at_the_yield(self):
        seen = []

        def conversation():
            try:
                yield ("fail",)
            except KeyError:
                seen.append("caught at the yield")

        run_events({"fail": fail}, conversation())
        self.assertEqual(seen, ["caught at the yield"])
