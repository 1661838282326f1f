"""Telling subscribers: the fan-out, email and webhook deliverers on the shared outbox."""
