"""The send-back loop in miniature: what ProcessTestCase.run_events does, minus the checks."""


def run_events(handlers, gen):
    """Drive generator *gen*: for each ``(name, *args)`` it yields, call ``handlers[name](*args)``."""
    value, error = None, None
    while True:
        try:
            event = gen.send(value) if error is None else gen.throw(error)
        except StopIteration:
            return
        value, error = None, None
        try:
            value = handlers[event[0]](*event[1:])  # sent back as the value of the yield
        except Exception as exc:
            error = exc  # thrown into the test at its yield
