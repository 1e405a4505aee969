#!/usr/bin/env python3
"""timed-cat.py PORT CID: `ipfs cat` of CID through the RPC API on
127.0.0.1:PORT, printing the throughput, the time taken, the time to the
first byte of the body and the byte count, on one line with no newline
(the calling script appends to it). Used by shaped-cat.sh and
slow-provider-cat.sh."""
import http.client
import sys
import time

port, c = sys.argv[1], sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
t = time.time()
conn.request("POST", "/api/v0/cat?arg=" + c + "&progress=false")
r = conn.getresponse()
if r.status != 200:
    sys.exit("cat %s: HTTP %d: %s" % (c, r.status, r.read(500)))
n = len(r.read(1))
first = time.time()
while True:
    x = r.read(1 << 20)
    if not x:
        break
    n += len(x)
end = time.time()
print("%.2f MiB/s in %.2f s, first byte after %.1f ms (%d bytes)"
      % (n / (end - t) / 2**20, end - t, (first - t) * 1000, n), end="")
