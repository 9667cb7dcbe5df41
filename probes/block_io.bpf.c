// disk.io: one sample per completed block request, keyed in flight by (dev, sector).
// Only tracepoint arguments and helpers are read: kernel structs are not safe here.

struct rq_key {
    u32 dev;
    u32 empty;    // data-less (flush) requests report sector 0: keep them apart
    u64 sector;
};

struct rq_start {
    u64 insert_ts;
    u64 issue_ts;
    u32 pid;
    u32 bytes;
    char comm[16];
};

struct io_sample {
    u64 ts;       // completion
    u64 latency;  // issue -> complete
    u64 queue;    // insert -> issue; ~0 when the insert was not seen
    u32 dev;
    u32 bytes;
    u32 pid;
    char op[2];   // first two rwbs characters ("FW": preflush write)
    char pad[2];
    char comm[16];
};

BPF_TABLE("lru_hash", struct rq_key, struct rq_start, th_rq, 16384);

TRACEPOINT_PROBE(block, block_rq_insert) {
    struct rq_key key = {};
    key.dev = args->dev;
    key.sector = args->sector;
    key.empty = args->nr_sector == 0;
    if (key.empty)
        key.sector = 0;  // a flush request and the empty preflush write it serves
    struct rq_start s = {};
    s.insert_ts = bpf_ktime_get_ns();
    th_rq.update(&key, &s);
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_issue) {
    struct rq_key key = {};
    key.dev = args->dev;
    key.sector = args->sector;
    key.empty = args->nr_sector == 0;
    if (key.empty)
        key.sector = 0;  // a flush request and the empty preflush write it serves
    struct rq_start s = {};
    struct rq_start *old = th_rq.lookup(&key);
    if (old)
        s.insert_ts = old->insert_ts;
    s.issue_ts = bpf_ktime_get_ns();
    s.pid = bpf_get_current_pid_tgid() >> 32;
    s.bytes = args->nr_sector * 512;
    bpf_get_current_comm(&s.comm, sizeof(s.comm));
    th_rq.update(&key, &s);
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_complete) {
    struct rq_key key = {};
    key.dev = args->dev;
    key.sector = args->sector;
    key.empty = args->nr_sector == 0;
    if (key.empty)
        key.sector = 0;  // a flush request and the empty preflush write it serves
    struct rq_start *s = th_rq.lookup(&key);
    if (!s)
        return 0;
    if (s->issue_ts == 0) {
        th_rq.delete(&key);
        return 0;
    }
    struct io_sample out = {};
    out.ts = bpf_ktime_get_ns();
    out.latency = out.ts - s->issue_ts;
    out.queue = s->insert_ts ? s->issue_ts - s->insert_ts : ~0ULL;
    out.dev = args->dev;
    out.bytes = s->bytes;
    out.pid = s->pid;
    out.op[0] = args->rwbs[0];
    out.op[1] = args->rwbs[1];
    __builtin_memcpy(&out.comm, s->comm, sizeof(out.comm));
    th_rq.delete(&key);
    th_submit(args, &out, sizeof(out));
    return 0;
}
