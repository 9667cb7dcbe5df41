// proc.exec: a successful exec, with the file name from the tracepoint's __data_loc.

struct exec_sample {
    u64 ts;
    u32 pid;
    char comm[16];
    char filename[228];
};

TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct exec_sample out = {};
    out.ts = bpf_ktime_get_ns();
    out.pid = args->pid;
    bpf_get_current_comm(&out.comm, sizeof(out.comm));
    bpf_probe_read_kernel_str(&out.filename, sizeof(out.filename),
                              (void *)args + (args->data_loc_filename & 0xFFFF));
    th_submit(args, &out, sizeof(out));
    return 0;
}
