"""The client: ``python -m pingpong.ping ENDPOINT [COUNT]`` sends pings, prints replies."""
import sys

import zmq


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2:
        sys.exit("usage: python -m pingpong.ping ENDPOINT [COUNT]")
    endpoint, count = argv[0], int(argv[1]) if len(argv) == 2 else 3
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.linger = 0
    sock.rcvtimeo = 5000  # never wait forever for the server
    sock.connect(endpoint)
    try:
        for n in range(1, count + 1):
            sock.send_json(["ping", n])
            print("ping", n, "->", sock.recv_json())
    except zmq.Again:
        print("ping: no reply within 5 s", file=sys.stderr)
        return 1
    finally:
        sock.close()
        context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
