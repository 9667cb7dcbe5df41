// mm.reclaim: one interval per direct reclaim, begin -> end, per task.

struct reclaim_sample {
    u64 ts;
    u64 end;
    u32 pid;
    char comm[16];
    char pad[4];
};

BPF_TABLE("lru_hash", u32, u64, th_reclaim, 8192);

TRACEPOINT_PROBE(vmscan, mm_vmscan_direct_reclaim_begin) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    th_reclaim.update(&tid, &ts);
    return 0;
}

TRACEPOINT_PROBE(vmscan, mm_vmscan_direct_reclaim_end) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 *ts = th_reclaim.lookup(&tid);
    if (!ts)
        return 0;
    struct reclaim_sample out = {};
    out.ts = *ts;
    out.end = bpf_ktime_get_ns();
    out.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&out.comm, sizeof(out.comm));
    th_reclaim.delete(&tid);
    th_submit(args, &out, sizeof(out));
    return 0;
}
