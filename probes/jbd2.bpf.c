// fs.commit: one interval per jbd2 journal commit, keyed by (dev, transaction).

typedef unsigned int tid_t;  // the tracepoint format names it; the headers may not

struct commit_key {
    u32 dev;
    u32 tid;
};

struct commit_sample {
    u64 ts;
    u64 end;
    u32 dev;
    u32 tid;
};

BPF_TABLE("lru_hash", struct commit_key, u64, th_commit, 1024);

TRACEPOINT_PROBE(jbd2, jbd2_start_commit) {
    struct commit_key key = {};
    key.dev = args->dev;
    key.tid = args->transaction;
    u64 ts = bpf_ktime_get_ns();
    th_commit.update(&key, &ts);
    return 0;
}

TRACEPOINT_PROBE(jbd2, jbd2_end_commit) {
    struct commit_key key = {};
    key.dev = args->dev;
    key.tid = args->transaction;
    u64 *ts = th_commit.lookup(&key);
    if (!ts)
        return 0;
    struct commit_sample out = {};
    out.ts = *ts;
    out.end = bpf_ktime_get_ns();
    out.dev = key.dev;
    out.tid = key.tid;
    th_commit.delete(&key);
    th_submit(args, &out, sizeof(out));
    return 0;
}
