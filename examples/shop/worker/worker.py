"""The shop's worker: processes a job every few seconds."""

import time

count = 0
print("worker started", flush=True)
while True:
    count += 1
    print(f"processed job {count}", flush=True)
    time.sleep(5)
