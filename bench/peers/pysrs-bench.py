#!/usr/bin/python3
# pysrs forward+reverse throughput, timed inside Python. Speaks the protocol described
# in bench/lib/peers.mjs: round-trip check, {"ready":true}, then one timed round per
# stdin line "<seconds>" (of CPU time), answered with {"opsPerSec":N}.
# Debian's python3-srs is only importable by the system interpreter (/usr/bin/python3).
# Usage: pysrs-bench.py ADDRESS_FILE
import json
import sys
import time

from SRS.Guarded import Guarded

with open(sys.argv[1]) as f:
    addresses = f.read().splitlines()

srs = Guarded(secret='tops3cr3t')

# A harness that silently fails to round-trip must not report a fantastic number.
for address in addresses:
    back = srs.reverse(srs.forward(address, 'example.com'))
    if back != address:
        sys.exit(f'round trip failed: {address} -> {back}')
print(json.dumps({'ready': True}), flush=True)

# Whole passes over the list until the budget of CPU time is used, like bench/srs.mjs: CPU time
# of this process, so that time other processes have the CPU is not counted.
for line in iter(sys.stdin.readline, ''):
    seconds = float(line)
    ops, start = 0, time.process_time()
    while True:
        for address in addresses:
            srs.reverse(srs.forward(address, 'example.com'))
        ops += len(addresses)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            break
    print(json.dumps({'opsPerSec': ops / elapsed}), flush=True)
