"""A biolatency stand-in on tracepoints (bcc's biolatency needs kprobes): issue ->
complete latency into a log2 histogram in the kernel, printed at SIGINT."""

import signal
import sys

from bcc import BPF

PROG = b"""
BPF_HASH(start, u64, u64);
BPF_HISTOGRAM(dist);
TRACEPOINT_PROBE(block, block_rq_issue) {
    u64 key = ((u64)args->dev << 40) ^ args->sector;
    u64 ts = bpf_ktime_get_ns();
    start.update(&key, &ts);
    return 0;
}
TRACEPOINT_PROBE(block, block_rq_complete) {
    u64 key = ((u64)args->dev << 40) ^ args->sector;
    u64 *ts = start.lookup(&key);
    if (!ts)
        return 0;
    dist.increment(bpf_log2l((bpf_ktime_get_ns() - *ts) / 1000));
    start.delete(&key);
    return 0;
}
"""

b = BPF(text=PROG)
print("ready", file=sys.stderr, flush=True)
try:
    signal.pause()
except KeyboardInterrupt:
    b[b"dist"].print_log2_hist(b"usecs")
