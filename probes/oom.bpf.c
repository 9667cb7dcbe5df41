// oom.kill: the OOM killer marked a victim. The cgroup is read in user space from
// /proc/<pid>/cgroup while the victim is still exiting.

struct oom_sample {
    u64 ts;
    u64 rss_kb;   // anon + file + shmem RSS, in kB (the tracepoint's unit)
    u32 pid;
    char comm[16];
    char pad[4];
};

TRACEPOINT_PROBE(oom, mark_victim) {
    struct oom_sample out = {};
    out.ts = bpf_ktime_get_ns();
    out.pid = args->pid;
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
