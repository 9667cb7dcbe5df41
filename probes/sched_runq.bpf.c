// sched.runq: wakeup (or preemption while runnable) -> switch-in latency per task.
// TH_MIN_LAT_NS (a plan push-down) drops shorter waits in the kernel.
//
// A waiting task is one u64 word in a set-associative table of slots in a BPF array
// (the verifier inlines its lookups), not a hash-map entry: a hash-map update costs
// ~400 ns a hit, the highest-rate stream's hot path. The word is pid << 42 | the
// wakeup time's low 42 bits (a wait is measured modulo 73 minutes), 0 when free: one
// load reads a slot whole, so a slot is never seen half written. The pid picks the
// set; a free slot is claimed with a compare-and-swap (tasks of one set wake on
// several CPUs), while a task's own slot is rewritten and freed with plain stores:
// a task's wakeups, preemptions and switch-ins are serialised by its runqueue lock.
// A task woken again before it ran gets the new time (as the hash update did). A
// slot older than 2^TH_WAKE_STALE_SHIFT ns (a task woken just before it exited is
// never switched in) may be taken over by a newcomer to a full set. A wakeup that
// finds no slot is a lost sample: counted in th_lost and th_noslot.

#ifndef TH_MIN_LAT_NS
#define TH_MIN_LAT_NS 0
#endif
#ifndef TH_WAKE_SETS
#define TH_WAKE_SETS 4096  // a power of two
#endif
#ifndef TH_WAKE_WAYS
#define TH_WAKE_WAYS 8
#endif
#ifndef TH_WAKE_STALE_SHIFT
#define TH_WAKE_STALE_SHIFT 34  // 17 s
#endif

#define TH_TS_BITS 42
#define TH_TS_MASK ((1ULL << TH_TS_BITS) - 1)

struct runq_sample {
    u64 ts;
    u64 latency;
    u32 pid;
    u32 cpu;
    char comm[16];
};

struct wake_set {
    u64 way[TH_WAKE_WAYS];
};

BPF_ARRAY(th_wake, struct wake_set, TH_WAKE_SETS);
BPF_PERCPU_ARRAY(th_noslot, u64, 1);

static __always_inline void th_wake_lost(void) {
    int zero = 0;
    u64 *c = th_noslot.lookup(&zero);
    if (c)
        __sync_fetch_and_add(c, 1);
    th_count_lost();
}

static __always_inline void th_enqueue(u32 pid, u64 now) {
    if (pid == 0)
        return;
    u32 i = pid & (TH_WAKE_SETS - 1);
    struct wake_set *set = th_wake.lookup(&i);
    if (!set)
        return;
    u64 word = (u64)pid << TH_TS_BITS | (now & TH_TS_MASK);
    int free = -1;
#pragma unroll
    for (int w = 0; w < TH_WAKE_WAYS; w++) {
        u64 v = set->way[w];
        if (v >> TH_TS_BITS == pid) {
            set->way[w] = word;
            return;
        }
        if (v == 0 && free < 0)
            free = w;
    }
    if (free >= 0) {
#pragma unroll
        for (int w = 0; w < TH_WAKE_WAYS; w++) {
            if (w >= free && set->way[w] == 0 &&
                __sync_val_compare_and_swap(&set->way[w], 0, word) == 0)
                return;
        }
    }
    // A full set: take over a slot so old its task will not run again (it exited).
#pragma unroll
    for (int w = 0; w < TH_WAKE_WAYS; w++) {
        u64 v = set->way[w];
        if (((now - v) & TH_TS_MASK) >> TH_WAKE_STALE_SHIFT &&
            __sync_val_compare_and_swap(&set->way[w], v, word) == v) {
            th_wake_lost();  // if its task does run again, that wait goes unreported
            return;
        }
    }
    th_wake_lost();
}

#ifndef TH_RAW_WAKEUP
TRACEPOINT_PROBE(sched, sched_wakeup) {
    th_enqueue(args->pid, bpf_ktime_get_ns());
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new) {
    th_enqueue(args->pid, bpf_ktime_get_ns());
    return 0;
}
#else
// Wakeups as raw tracepoints (sched_wakeup(struct task_struct *p)), p->pid at its
// offset in the running kernel's BTF (-DTH_OFF_TASK_PID, probes/btf.py). A wakeup
// often comes from an interrupt (a timer, an I/O completion): a perf-event tracepoint
// program there is skipped while any BPF tracing program runs on its CPU (counted, a
// lost sample), a raw tracepoint program only while that same program runs.
static __always_inline u32 th_task_pid(struct bpf_raw_tracepoint_args *ctx) {
    u32 pid = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), (char *)ctx->args[0] + TH_OFF_TASK_PID);
    return pid;
}

RAW_TRACEPOINT_PROBE(sched_wakeup) {
    th_enqueue(th_task_pid(ctx), bpf_ktime_get_ns());
    return 0;
}

RAW_TRACEPOINT_PROBE(sched_wakeup_new) {
    th_enqueue(th_task_pid(ctx), bpf_ktime_get_ns());
    return 0;
}
#endif

TRACEPOINT_PROBE(sched, sched_switch) {
    // A task switched out while runnable waits on the queue again: state 0 (TASK_RUNNING,
    // "R"), with the preemption bit above the reported states when preempted in the
    // kernel ("R+", TASK_REPORT_MAX 0x100 since 4.14).
    u64 now = 0;
    if ((args->prev_state & 0xff) == 0) {
        now = bpf_ktime_get_ns();
        th_enqueue(args->prev_pid, now);
    }
    u32 pid = args->next_pid;
    if (pid == 0)
        return 0;
    u32 i = pid & (TH_WAKE_SETS - 1);
    struct wake_set *set = th_wake.lookup(&i);
    if (!set)
        return 0;
    u64 v = 0;
#pragma unroll
    for (int w = 0; w < TH_WAKE_WAYS; w++) {
        u64 x = set->way[w];
        if (x >> TH_TS_BITS == pid) {
            v = x;
            set->way[w] = 0;
            break;
        }
    }
    if (v == 0)
        return 0;
    if (now == 0)
        now = bpf_ktime_get_ns();
    u64 lat = (now - v) & TH_TS_MASK;
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
