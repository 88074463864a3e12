"""echoapp: a tiny PyZMQ application, laid out the way most projects are."""
