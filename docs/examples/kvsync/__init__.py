"""A small key-value service and the blocking client library its users import.

The example of :doc:`/howto/client`: the client library, not a test socket, is what the
tests drive.
"""
