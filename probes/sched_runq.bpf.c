// sched.runq: wakeup (or preemption while runnable) -> switch-in latency per task.
// TH_MIN_LAT_NS (a plan push-down) drops shorter waits in the kernel.

#ifndef TH_MIN_LAT_NS
#define TH_MIN_LAT_NS 0
#endif

struct runq_sample {
    u64 ts;
    u64 latency;
    u32 pid;
    u32 cpu;
    char comm[16];
};

BPF_TABLE("lru_hash", u32, u64, th_wake, 32768);

static __always_inline void th_enqueue(u32 pid) {
    if (pid == 0)
        return;
    u64 ts = bpf_ktime_get_ns();
    th_wake.update(&pid, &ts);
}

TRACEPOINT_PROBE(sched, sched_wakeup) {
    th_enqueue(args->pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new) {
    th_enqueue(args->pid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_switch) {
    // A task preempted while runnable (state 0, TASK_RUNNING) waits on the queue again.
    if (args->prev_state == 0)
        th_enqueue(args->prev_pid);
    u32 pid = args->next_pid;
    if (pid == 0)
        return 0;
    u64 *tsp = th_wake.lookup(&pid);
    if (!tsp)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 lat = now - *tsp;
    th_wake.delete(&pid);
    if (lat < TH_MIN_LAT_NS)
        return 0;
    struct runq_sample out = {};
    out.ts = now;
    out.latency = lat;
    out.pid = pid;
    out.cpu = bpf_get_smp_processor_id();
    __builtin_memcpy(&out.comm, args->next_comm, sizeof(out.comm));
    th_submit(args, &out, sizeof(out));
    return 0;
}
