"""Codecs (issue 28, item 3, and parts of item 5): zmqprocesstest.codecs, a socket's
codec in the send and recv events and in the reports, ``ignore=`` on recv and recv_raw,
``wait_output``'s match, a real Jupyter kernel under codecs.jupyter."""
import hashlib
import hmac
import json
import os
import sys
import time
import unittest
from unittest import mock

import zmq

from zmqprocesstest import ProcessTestCase, SocketTimeout, codecs, timeline
from zmqprocesstest.codecs import CodecError
from zmqprocesstest.report.html import page_html

from .support import only_problem, problems, run_case

try:
    import msgpack
except ImportError:  # optional: the msgpack tests say so
    msgpack = None
try:
    import ipykernel  # noqa: F401 - only whether it is there
    import jupyter_client  # noqa: F401
    HAVE_KERNEL = True
except ImportError:
    HAVE_KERNEL = False

NO_MSGPACK = "msgpack is not installed (pip install msgpack, or the test extra)"
NO_KERNEL = "ipykernel and jupyter_client are not installed (pip install ipykernel jupyter_client, or the test extra)"


def signed(key, parts):
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.hexdigest().encode()


class TestBuiltInCodecs(unittest.TestCase):
    def test_json_is_the_default_format(self):
        self.assertEqual(codecs.json.encode({"a": [1]}), [b'{"a": [1]}'])
        self.assertEqual(codecs.json.decode([b"id", b"", b'["pong", 1]']), [b"id", b"", ["pong", 1]])
        self.assertEqual(codecs.json.render([b"id", b'{"a": 1}']), "[b'id', {'a': 1}]")
        with self.assertRaisesRegex(TypeError, "expected a JSON-serialisable body, got"):
            codecs.json.encode({1, 2})
        with self.assertRaisesRegex(CodecError, r"expected JSON in the last frame, got b'not json'"):
            codecs.json.decode([b"not json"])
        self.assertIsInstance(codecs.json, codecs.Codec)

    def test_raw_passes_frames(self):
        self.assertEqual(codecs.raw.encode("text"), [b"text"])
        self.assertEqual(codecs.raw.encode([b"a", "b"]), [b"a", b"b"])
        self.assertEqual(codecs.raw.decode([b"a", b"b"]), [b"a", b"b"])
        with self.assertRaisesRegex(TypeError, r"expected each frame of the body of a raw message to be bytes or "
                                               r"str, got 3"):
            codecs.raw.encode([b"a", 3])

    @unittest.skipIf(msgpack is None, NO_MSGPACK)
    def test_msgpack_round_trip_and_errors(self):
        frames = codecs.msgpack.encode({"n": 1, "data": b"\x00\x01", "s": "é"})
        self.assertEqual(codecs.msgpack.decode([b"topic"] + frames),
                         [b"topic", {"n": 1, "data": b"\x00\x01", "s": "é"}])
        self.assertIn("'n': 1", codecs.msgpack.render(frames))
        with self.assertRaisesRegex(CodecError, r"expected MessagePack in the last frame, got b'\\xc1'"):
            codecs.msgpack.decode([b"\xc1"])  # 0xc1: never used by MessagePack
        with self.assertRaisesRegex(TypeError, "expected a body MessagePack can encode"):
            codecs.msgpack.encode(object())

    def test_msgpack_without_the_package_says_so(self):
        with mock.patch.dict(sys.modules, {"msgpack": None}):
            with self.assertRaisesRegex(ImportError, r"codecs.msgpack needs the msgpack package, which is not "
                                                     r"installed \(pip install msgpack\)"):
                codecs.msgpack.encode({})
            self.assertIn("not MessagePack", codecs.msgpack.render([b"\x80"]))  # a report never fails on it


class TestJupyterCodec(unittest.TestCase):
    KEY = b"0123-key"

    def test_send_fills_the_header_and_signs(self):
        codec = codecs.jupyter(self.KEY.decode(), session="s1", username="tester")
        frames = codec.encode({"msg_type": "execute_request", "content": {"code": "1"}})
        self.assertEqual(frames[0], b"<IDS|MSG>")
        self.assertEqual(len(frames), 6)
        self.assertEqual(frames[1], signed(self.KEY, frames[2:6]))
        header = json.loads(frames[2])
        self.assertEqual(set(header), {"msg_id", "msg_type", "username", "session", "date", "version"})
        self.assertEqual((header["msg_type"], header["session"], header["username"], header["version"]),
                         ("execute_request", "s1", "tester", "5.3"))
        self.assertRegex(header["date"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
        self.assertEqual([json.loads(f) for f in frames[3:6]], [{}, {}, {"code": "1"}])
        self.assertEqual(codec.last_sent["msg_id"], header["msg_id"])

    def test_recv_returns_the_identities_then_the_message(self):
        codec = codecs.jupyter(self.KEY)
        request = codec.encode({"msg_type": "kernel_info_request", "content": {}})
        parent = codec.last_sent
        reply = codec.encode({"msg_type": "kernel_info_reply", "content": {"status": "ok"}, "parent": parent,
                              "metadata": {"m": 1}, "buffers": [b"buf"]})
        got = codec.decode([b"id1", b"id2"] + reply)
        self.assertEqual(got[:2], [b"id1", b"id2"])
        message = got[2]
        self.assertEqual((message["msg_type"], message["content"], message["metadata"], message["buffers"]),
                         ("kernel_info_reply", {"status": "ok"}, {"m": 1}, [b"buf"]))
        self.assertEqual(message["parent_header"]["msg_id"], json.loads(request[2])["msg_id"])
        self.assertEqual(message["msg_id"], message["header"]["msg_id"])

    def test_a_bad_signature_fails_naming_the_message(self):
        frames = codecs.jupyter(b"another key").encode({"msg_type": "status", "content": {}, "header": {
            "msg_id": "m-42"}})
        with self.assertRaisesRegex(CodecError, r"bad signature on the Jupyter message 'status' \(msg_id 'm-42'\): "
                                                r"expected the hmac-sha256 of its header, parent_header, metadata "
                                                r"and content with the session's key, got signature b'"):
            codecs.jupyter(self.KEY).decode(frames)
        with self.assertRaisesRegex(CodecError, "got no signature"):
            codecs.jupyter(self.KEY).decode(codecs.jupyter(b"").encode({"msg_type": "status", "content": {}}))
        self.assertIn("BAD SIGNATURE", codecs.jupyter(self.KEY).render(frames))

    def test_an_empty_key_neither_signs_nor_checks(self):
        frames = codecs.jupyter("").encode({"msg_type": "status", "content": {}})
        self.assertEqual(frames[1], b"")
        self.assertEqual(codecs.jupyter("").decode(frames)[0]["msg_type"], "status")

    def test_frames_that_are_no_jupyter_message_say_what_was_expected(self):
        codec = codecs.jupyter(self.KEY)
        with self.assertRaisesRegex(CodecError, r"expected a Jupyter message \(identities, b'<IDS\|MSG>', "
                                                r"signature, .*got no b'<IDS\|MSG>' frame in \[b'hello'\]"):
            codec.decode([b"hello"])
        with self.assertRaisesRegex(CodecError, r"expected signature, header, parent_header, metadata and content "
                                                r"after b'<IDS\|MSG>', got 2 frame\(s\)"):
            codec.decode([b"<IDS|MSG>", b"sig", b"{}"])
        with self.assertRaisesRegex(TypeError, r"expected a Jupyter message: a dict with at least 'msg_type' "
                                               r"\(str\) and 'content' \(dict\), got \['status'\]"):
            codec.encode(["status"])
        with self.assertRaisesRegex(ValueError, "expected signature_scheme to be 'hmac-' and a hashlib digest"):
            codecs.jupyter(self.KEY, signature_scheme="rsa-sha256")
        self.assertIn("not a Jupyter message", codec.render([b"hello"]))

    def test_rendered_as_msg_type_ids_and_content(self):
        codec = codecs.jupyter(self.KEY)
        codec.encode({"msg_type": "execute_request", "content": {}, "header": {"msg_id": "abcdef0123_77_5"}})
        frames = codec.encode({"msg_type": "stream", "content": {"name": "stdout", "text": "42\n"},
                               "parent": codec.last_sent, "header": {"msg_id": "0123456789abcdef_9_12"}})
        self.assertEqual(codec.render([b"kernel.x.stream"] + frames),
                         "stream 01234567_12 (re abcdef01_5) name='stdout' text='42\\n'")


class Peers(ProcessTestCase):
    """Two test sockets of one codec talk to each other: the test plays both sides."""

    def pair(self, codec):
        a = self.socket(zmq.PAIR, bind=self.endpoint, name="a", codec=codec)
        b = self.socket(zmq.PAIR, connect=self.endpoint, name="b", codec=codec)
        return a, b

    def lines(self):
        return [(kind, source, text) for _, kind, source, text in timeline.current().lines()
                if kind in ("sent", "received")]


class TestSocketsUseTheirCodec(Peers):
    @unittest.skipIf(msgpack is None, NO_MSGPACK)
    def test_msgpack_send_and_recv(self):
        a, b = self.pair(codecs.msgpack)
        yield ("send", a, [b"topic"], {"n": [1, 2]})
        self.assertEqual((yield ("recv", b)), [b"topic", {"n": [1, 2]}])
        self.assertEqual((yield ("send_raw", a, [msgpack.packb(7)])), None)
        self.assertEqual((yield ("recv", b, None)), [msgpack.packb(7)])  # json_index=None: raw, any codec
        rendered = "[b'topic', {'n': [1, 2]}]"
        self.assertEqual(self.lines()[:2], [("sent", "a", rendered), ("received", "b", rendered)])

    def test_jupyter_send_and_recv_rendered_the_same_both_ways(self):
        codec = codecs.jupyter(b"k")
        a, b = self.pair(codec)
        yield ("send", a, [b"ident"], {"msg_type": "status", "content": {"execution_state": "busy"}})
        ident, message = yield ("recv", b)
        self.assertEqual((ident, message["msg_type"], message["content"]),
                         (b"ident", "status", {"execution_state": "busy"}))
        (k1, s1, sent), (k2, s2, received) = self.lines()
        self.assertEqual(sent, received)
        self.assertRegex(sent, r"^status [0-9a-f]{8} execution_state='busy'$")

    def test_a_codec_error_names_the_socket_and_codec(self):
        a, b = self.pair(codecs.jupyter(b"k"))
        yield ("send_raw", a, [b"not", b"jupyter"])
        with self.assertRaisesRegex(CodecError, r"on socket 'b' \(PAIR, connect ipc://\S+\) \(codec 'jupyter'\): "
                                                r"expected a Jupyter message"):
            yield ("recv", b)

    def test_json_index_is_for_json_only(self):
        a, b = self.pair(codecs.raw)
        with self.assertRaisesRegex(TypeError, r"expected json_index -1 or None: socket 'b' .* decodes with its "
                                               r"codec 'raw', not JSON, got json_index=0"):
            yield ("recv", b, 0)

    def test_the_default_stays_json_and_its_transcript_shows_bodies_as_values(self):
        a, b = self.pair(None)
        self.assertIs(a.codec, codecs.json)
        yield ("send", a, [b"h"], ["ping", 1])
        self.assertEqual((yield ("recv", b)), [b"h", ["ping", 1]])
        self.assertEqual(self.lines(), [("sent", "a", "[b'h', ['ping', 1]]"),
                                        ("received", "b", "[b'h', ['ping', 1]]")])

    def test_not_a_codec_is_refused(self):
        with self.assertRaisesRegex(TypeError, r"expected a codec \(an object with encode, decode and render "
                                               r"methods, see zmqprocesstest.codecs\), got 'json'"):
            self.socket(zmq.PAIR, codec="json")

    def test_a_codec_whose_render_fails_still_records_the_message(self):
        class Broken:
            name = "broken"
            encode = codecs.raw.encode
            decode = codecs.raw.decode

            def render(self, frames):
                raise RuntimeError("oops")

        a, b = self.pair(Broken())
        yield ("send", a, [], b"x")
        self.assertEqual((yield ("recv", b)), [b"x"])
        self.assertIn("[b'x'] (codec broken could not render it: RuntimeError('oops'))", self.lines()[0][2])


class TestEveryFrameInTheChart(Peers):
    def test_the_payload_frame_of_a_long_message_is_in_the_chart(self):
        a, b = self.pair(None)  # the default codec: the chart shows the frames themselves
        yield ("send_raw", a, [b"", b"MDPW01", b"\x02", b"client", b"", b"PAYLOAD"])
        yield ("recv_raw", b)
        chart = timeline.current().chart().splitlines()
        self.assertEqual(len(chart), 3)
        for row in chart[1:]:  # the 6th frame, sent and received (cut at the 4th before)
            self.assertIn("b'client', b'', b'PAYLOAD']", row)


class TestIgnore(Peers):
    def test_recv_and_recv_raw_pass_over_heartbeats(self):
        a, b = self.pair(None)
        for _ in range(3):
            yield ("send_raw", a, [b"HB"])
        yield ("send", a, [b"data"], {"n": 1})
        self.assertEqual((yield ("recv", b, -1, None, None, b"HB")), [b"data", {"n": 1}])
        yield ("send_raw", a, [b"HB"])
        yield ("send_raw", a, [b"real"])
        self.assertEqual((yield ("recv_raw", b, None, lambda frames: frames == [b"HB"])), [b"real"])
        received = [text for _, kind, _, text in timeline.current().lines() if kind == "received"]
        self.assertEqual(len(received), 6, "a message passed over is still in the timeline")

    def test_the_timeout_bounds_the_whole_wait_and_says_what_was_passed_over(self):
        a, b = self.pair(None)
        for _ in range(3):
            yield ("send_raw", a, [b"HB"])
        began = time.monotonic()
        with self.assertRaises(SocketTimeout) as caught:
            yield ("recv_raw", b, 0.2, b"HB")
        self.assertLess(time.monotonic() - began, 2.0)
        self.assertIn("timed out after 0.2 s", str(caught.exception))
        self.assertIn("3 message(s) passed over by ignore= meanwhile", str(caught.exception))

    def test_a_bad_ignore_is_refused(self):
        a, b = self.pair(None)
        with self.assertRaisesRegex(TypeError, "expected ignore to be a topic prefix, a list of them or a function"):
            yield ("recv_raw", b, 0.1, 42)


class TestWaitOutputMatch(ProcessTestCase):
    def test_groups_are_kept(self):
        proc = self.start_command([sys.executable, "-c", "print('listening on port 5123', flush=True)"])
        match = yield ("wait_output", proc, r"port (?P<port>\d+)")
        self.assertEqual((match[0], match[1], match["port"]), ("port 5123", "5123", "5123"))


def _kernel_files(case, key):
    """A connection file for an ipykernel over ipc in the test's private directory, and
    each channel's endpoint."""
    folder = os.path.dirname(case.new_endpoint("ipc")[len("ipc://"):])
    connection = {"transport": "ipc", "ip": os.path.join(folder, "kernel"), "shell_port": 1, "iopub_port": 2,
                  "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": key, "signature_scheme": "hmac-sha256",
                  "kernel_name": ""}
    path = os.path.join(folder, "kernel.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(connection, f)
    return path, {name: f"ipc://{connection['ip']}-{connection[name + '_port']}"
                  for name in ("shell", "iopub", "control")}


@unittest.skipUnless(HAVE_KERNEL, NO_KERNEL)
class TestJupyterKernel(ProcessTestCase):
    """A real ipykernel, driven by test sockets under codecs.jupyter."""

    timeout = 30.0  # a kernel's start imports IPython: seconds on a loaded machine
    # A kernel answers shutdown_request once its loops have stopped, then exits: seconds
    # on a loaded machine, past the default 2 s of the polite stop step.
    stop_timeouts = dict(ProcessTestCase.stop_timeouts, message=10.0)
    KEY = "a0b1c2d3-test-key"

    def setUp(self):
        path, endpoints = _kernel_files(self, self.KEY)
        self.codec = codecs.jupyter(self.KEY)
        self.shell = self.socket(zmq.DEALER, connect=endpoints["shell"], codec=self.codec, name="shell")
        self.iopub = self.socket(zmq.SUB, connect=endpoints["iopub"], codec=self.codec, name="iopub")
        # Subscribed before the kernel starts, as iopub is: it hears the same messages.
        self.wrong = self.socket(zmq.SUB, connect=endpoints["iopub"], codec=codecs.jupyter("not the key"),
                                 name="wrong")
        control = self.socket(zmq.DEALER, connect=endpoints["control"], codec=self.codec, name="control")
        self.kernel = self.start_command([sys.executable, "-m", "ipykernel_launcher", "-f", path], name="kernel")
        self.set_stop_message(self.kernel, control, {"msg_type": "shutdown_request", "content": {"restart": False}})

    def test_kernel_info_and_execute(self):
        yield ("send", self.shell, [], {"msg_type": "kernel_info_request", "content": {}})
        request = self.codec.last_sent
        (reply,) = yield ("recv", self.shell)
        self.assertEqual(reply["msg_type"], "kernel_info_reply")
        self.assertEqual(reply["parent_header"]["msg_id"], request["msg_id"])
        self.assertEqual(reply["content"]["status"], "ok")

        yield ("send", self.shell, [], {"msg_type": "execute_request",
                                        "content": {"code": "print(6 * 7)", "silent": False}})
        execute = self.codec.last_sent["msg_id"]
        seen = []
        while not seen or seen[-1] != ("status", "idle"):
            *_, message = yield ("recv", self.iopub, -1, None, None,
                                 lambda frames: execute.encode() not in frames[-3])  # other requests' messages
            content = message["content"]
            seen.append((message["msg_type"], content.get("execution_state", content.get("text"))))
        self.assertEqual([s for s in seen if s[0] != "execute_input"],
                         [("status", "busy"), ("stream", "42\n"), ("status", "idle")])
        (reply,) = yield ("recv", self.shell)
        self.assertEqual((reply["msg_type"], reply["content"]["status"]), ("execute_reply", "ok"))

        received = [text for _, kind, source, text in timeline.current().lines()
                    if kind == "received" and source == "iopub"]
        for rendered in ("status", "stream", "execute_input"):
            self.assertTrue(any(text.startswith(rendered + " ") for text in received), (rendered, received))
        page = page_html("kernel", "passed", 0.0, timeline.current(), "")
        svg = page[page.index("<svg"):page.index("</svg>")]
        for label in (">stream ", ">status ", ">execute_request ", ">kernel_info_reply "):
            self.assertIn(label, svg)

    def test_a_wrong_signature_fails_saying_so(self):
        yield ("send", self.shell, [], {"msg_type": "kernel_info_request", "content": {}})
        yield ("recv", self.shell)
        with self.assertRaisesRegex(CodecError, r"on socket 'wrong' .*\(codec 'jupyter'\): bad signature on the "
                                                r"Jupyter message '\w+' \(msg_id '[^']+'\): expected the hmac-sha256"):
            yield ("recv", self.wrong)


class TestFailureReport(unittest.TestCase):
    def test_a_failed_test_shows_the_codec_rendering(self):
        class Fails(Peers):
            def test_it(self):
                a, b = self.pair(codecs.jupyter(b"k"))
                yield ("send", a, [], {"msg_type": "execute_request", "content": {"code": "1 + 1"}})
                yield ("recv", b)
                self.fail("on purpose")

        text = only_problem(self, run_case(Fails))
        self.assertRegex(text, r"a +-> execute_request [0-9a-f]{8} code='1 \+ 1'")
        self.assertRegex(text, r"b +<- execute_request [0-9a-f]{8} code='1 \+ 1'")
        self.assertEqual(problems(run_case(TestWaitOutputMatch)), [])


if __name__ == "__main__":
    unittest.main()
