// oom.kill: the OOM killer marked a victim. The cgroup is read in user space from
// /proc/<pid>/cgroup while the victim is still exiting.
//
// Constraint: a memcg OOM is invoked by a task charging its cgroup after limit
// reclaim failed, so the invoking task ran memcg reclaim just before; a global OOM
// follows direct (page allocator) reclaim instead.

struct oom_sample {
    u64 ts;
    u64 rss_kb;   // anon + file + shmem RSS, in kB (the tracepoint's unit)
    u32 pid;
    u32 invoker;  // tgid of the task that ran the OOM killer
    u32 memcg;    // 1: the invoker did memcg limit reclaim in the last TH_MEMCG_WINDOW_NS
    char comm[16];
    char pad[4];
};

#define TH_MEMCG_WINDOW_NS 5000000000ULL

BPF_TABLE("lru_hash", u32, u64, th_memcg_reclaim, 4096);

TRACEPOINT_PROBE(vmscan, mm_vmscan_memcg_reclaim_begin) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    th_memcg_reclaim.update(&tid, &ts);
    return 0;
}

TRACEPOINT_PROBE(oom, mark_victim) {
    struct oom_sample out = {};
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    out.ts = bpf_ktime_get_ns();
    out.pid = args->pid;
    out.invoker = id >> 32;
    u64 *rts = th_memcg_reclaim.lookup(&tid);
    out.memcg = rts && out.ts - *rts < TH_MEMCG_WINDOW_NS;
#ifdef TH_HAS_RSS
    out.rss_kb = args->anon_rss + args->file_rss + args->shmem_rss;
#else
    out.rss_kb = ~0ULL;
#endif
#ifdef TH_COMM_DATA_LOC
    bpf_probe_read_kernel_str(&out.comm, sizeof(out.comm),
                              (void *)args + (args->data_loc_comm & 0xFFFF));
#else
    bpf_get_current_comm(&out.comm, sizeof(out.comm));
#endif
    th_submit(args, &out, sizeof(out));
    return 0;
}
