// zfs.txg.sync via kprobe/kretprobe on spa_sync(spa_t *spa, uint64_t txg).
// spa_sync's only caller is txg_sync_thread, once per TXG: entry = sync start,
// return = sync end. spa_name (char[]) is the first member of struct spa, so the
// pool name is a string at arg0; no struct layout from kernel headers is needed.
// Function names carry no kprobe__ prefix: the loader attaches them explicitly,
// so compiling this program never attaches anything. The `events` perf map and
// th_submit() come from probes/_bcc.py's PRELUDE (shared loss counting).
#include <uapi/linux/ptrace.h>

#define POOL_LEN 64

struct txg_start {
    u64 ts;
    u64 txg;
    char pool[POOL_LEN];
};

struct txg_event {
    u64 start;
    u64 end;
    u64 txg;
    char pool[POOL_LEN];
};

BPF_HASH(txg_starts, u32, struct txg_start, 64);  // keyed by sync thread id

int txg_sync_enter(struct pt_regs *ctx)
{
    struct txg_start s = {};
    u32 tid = (u32)bpf_get_current_pid_tgid();
    s.ts = bpf_ktime_get_ns();
    s.txg = (u64)PT_REGS_PARM2(ctx);
    bpf_probe_read_kernel_str(&s.pool, sizeof(s.pool), (void *)PT_REGS_PARM1(ctx));
    txg_starts.update(&tid, &s);
    return 0;
}

int txg_sync_return(struct pt_regs *ctx)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct txg_start *s = txg_starts.lookup(&tid);
    if (!s)
        return 0;
    struct txg_event e = {};
    e.start = s->ts;
    e.end = bpf_ktime_get_ns();
    e.txg = s->txg;
    __builtin_memcpy(&e.pool, s->pool, sizeof(e.pool));
    txg_starts.delete(&tid);
    th_submit(ctx, &e, sizeof(e));
    return 0;
}
