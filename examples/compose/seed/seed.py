"""One-shot: set the visit counter to 0 unless it exists, then exit 0."""

import os
import socket

with socket.create_connection((os.environ.get("REDIS_HOST", "redis"), 6379), timeout=5) as s:
    s.sendall(b"*4\r\n$3\r\nSET\r\n$6\r\nvisits\r\n$1\r\n0\r\n$2\r\nNX\r\n")
    reply = s.recv(64)
print("seeded visits counter" if reply.startswith(b"+OK") else "visits counter already set")
