"""A key-value service on zmq.asyncio and the async client library its users call."""
