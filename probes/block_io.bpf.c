// disk.io: one sample per completed block request, paired in flight by (dev, sector).
// Only tracepoint arguments and helpers are read: kernel structs are not safe here.
//
// In-flight requests live in a set-associative table of slots in a BPF array (the
// verifier inlines its lookups), not in a hash map: a hash-map update costs ~400 ns a
// hit, while a slot is claimed with one compare-and-swap of its tag word and filled
// with plain stores. The key picks a set of TH_RQ_WAYS slots by a hash; a slot holds
// its key (tag word + dev). A request whose key is in flight already takes its slot
// over, as the hash update did. The tag word also holds the epoch (~8.6 s units) of
// its last claim: a full set lets a newcomer take over a slot two epochs old, left by
// a request that never completes (merged away after its insert); the LRU aged those
// out. An issued request that finds no slot can never be reported: it is counted in
// th_lost (a lost sample) and in th_noslot; taking over an issued request's slot is
// counted in th_lost alone, as is a request issued while another of its key is in
// flight (only one of the two completions can pair); a requeued request's slot goes
// back to "inserted" (block_rq_requeue), so its second issue is not such a request. A completion with no issued
// slot (issued before the probe attached, or its issue's run skipped by the kernel,
// which the drain counts from recursion_misses) is counted in th_unpaired.

#ifndef TH_RQ_SETS
#define TH_RQ_SETS 4096  // a power of two
#endif
#ifndef TH_RQ_WAYS
#define TH_RQ_WAYS 4
#endif
#ifndef TH_RQ_EPOCH_SHIFT
#define TH_RQ_EPOCH_SHIFT 33  // an epoch is 2^33 ns: a slot is stale after 8.6-17 s
#endif

#define TH_RQ_KEY_MASK ((1ULL << 56) - 1)

struct rq_slot {
    u64 tag;  // 0: free; else epoch << 56 | key ((sector << 1 | data-less) + 1)
    u64 insert_ts;
    u64 issue_ts;  // 0: inserted, not issued yet
    u32 dev;       // 0 while free (no block device is 0:0)
    u32 pid;
    u32 bytes;
    u32 pad;
    char comm[16];
    u64 pad2;  // a slot per cache line
};

struct rq_set {
    struct rq_slot way[TH_RQ_WAYS];
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

BPF_ARRAY(th_rq, struct rq_set, TH_RQ_SETS);
BPF_PERCPU_ARRAY(th_noslot, u64, 1);
BPF_PERCPU_ARRAY(th_unpaired, u64, 1);

// The key without dev (sectors < 2^54: 56 bits). Data-less (flush) requests report
// sector 0 and are keyed by device alone: a flush request and the empty preflush
// write it serves pair up.
static __always_inline u64 th_rq_key(u64 sector, u32 nr_sector) {
    return nr_sector ? (sector << 1) + 1 : 2;
}

static __always_inline struct rq_set *th_rq_set(u32 dev, u64 key) {
    u32 i = (u32)(((key >> 4) ^ ((u64)dev << 28)) * 0x9E3779B97F4A7C15ULL >> 40)
            & (TH_RQ_SETS - 1);
    return th_rq.lookup(&i);
}

static __always_inline struct rq_slot *th_rq_find(struct rq_set *set, u32 dev, u64 key) {
#pragma unroll
    for (int w = 0; w < TH_RQ_WAYS; w++) {
        struct rq_slot *s = &set->way[w];
        if ((s->tag & TH_RQ_KEY_MASK) == key && s->dev == dev)
            return s;
    }
    return NULL;
}

static __always_inline void th_rq_noslot(void) {
    int zero = 0;
    u64 *c = th_noslot.lookup(&zero);
    if (c)
        __sync_fetch_and_add(c, 1);
    th_count_lost();
}

static __always_inline void th_rq_unpaired(void) {
    int zero = 0;
    u64 *c = th_unpaired.lookup(&zero);
    if (c)
        __sync_fetch_and_add(c, 1);
}

// Free a slot: dev first, then the tag with an atomic (a full barrier: the compiler
// may not sink the dev store past it, so a newcomer's dev is never overwritten).
static __always_inline void th_rq_free(struct rq_slot *s) {
    u64 t = s->tag;
    s->dev = 0;
    __sync_val_compare_and_swap(&s->tag, t, 0);
}

// The key's slot: its own, else a free one, else a stale one claimed for it; or NULL.
static __always_inline struct rq_slot *th_rq_claim(struct rq_set *set, u32 dev, u64 key,
                                                   u64 now) {
    u64 epoch = (now >> TH_RQ_EPOCH_SHIFT) & 0xff;
    u64 tag = epoch << 56 | key;
    struct rq_slot *s = th_rq_find(set, dev, key);
    if (s) {
        u64 t = s->tag;
        if (t != tag)  // a new epoch: keep the slot from looking stale
            __sync_val_compare_and_swap(&s->tag, t, tag);
        return s;
    }
#pragma unroll
    for (int w = 0; w < TH_RQ_WAYS; w++) {
        s = &set->way[w];
        if (s->tag == 0 && __sync_val_compare_and_swap(&s->tag, 0, tag) == 0)
            goto claimed;
    }
    // A full set: take over a slot claimed two epochs ago (a request that never completed).
#pragma unroll
    for (int w = 0; w < TH_RQ_WAYS; w++) {
        s = &set->way[w];
        u64 t = s->tag;
        if (((epoch - (t >> 56)) & 0xff) >= 2 && __sync_val_compare_and_swap(&s->tag, t, tag) == t) {
            if (s->issue_ts)  // issued, not completed yet: if it ever completes, unreported
                th_count_lost();
            goto claimed;
        }
    }
    return NULL;
claimed:
    s->dev = dev;
    s->insert_ts = 0;
    s->issue_ts = 0;
    return s;
}

// A data-less request the block layer cannot name ('N': a passthrough command, say)
// would share the device's flush key: not tracked.
static __always_inline int th_rq_untracked(u32 nr_sector, char op) {
    return nr_sector == 0 && op == 'N';
}

TRACEPOINT_PROBE(block, block_rq_insert) {
    if (th_rq_untracked(args->nr_sector, args->rwbs[0]))
        return 0;
    u64 key = th_rq_key(args->sector, args->nr_sector);
    struct rq_set *set = th_rq_set(args->dev, key);
    if (!set)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct rq_slot *s = th_rq_claim(set, args->dev, key, now);
    if (!s)
        return 0;  // its issue may still find a slot; only the queue time is unknown then
    s->insert_ts = now;
    s->issue_ts = 0;
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_issue) {
    if (th_rq_untracked(args->nr_sector, args->rwbs[0]))
        return 0;
    u64 key = th_rq_key(args->sector, args->nr_sector);
    struct rq_set *set = th_rq_set(args->dev, key);
    if (!set)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct rq_slot *s = th_rq_claim(set, args->dev, key, now);
    if (!s) {
        th_rq_noslot();
        return 0;
    }
    if (s->issue_ts) {  // replaces an issued request of this key: one goes unreported
        s->insert_ts = 0;  // (and no insert of its own was seen)
        th_count_lost();
    }
    s->issue_ts = now;
    s->pid = bpf_get_current_pid_tgid() >> 32;
    s->bytes = args->nr_sector * 512;
    __builtin_memcpy(&s->comm, args->comm, sizeof(s->comm));  // current->comm, as the helper
    return 0;
}

// A started request handed back by its driver (busy) is issued again later: its slot
// goes back to "inserted", so the next issue is not taken for another request of
// the key (which would count a loss). Its queue time restarts with its re-insert.
TRACEPOINT_PROBE(block, block_rq_requeue) {
    u64 key = th_rq_key(args->sector, args->nr_sector);
    struct rq_set *set = th_rq_set(args->dev, key);
    if (!set)
        return 0;
    struct rq_slot *s = th_rq_find(set, args->dev, key);
    if (s) {
        s->issue_ts = 0;
        s->insert_ts = 0;
    }
    return 0;
}

// The completion: the issued slot of (dev, key) becomes a sample in `out` (all but its
// op), the slot is freed. 0 when there is nothing to report.
static __always_inline int th_rq_done(u32 dev, u64 sector, u32 nr_sector, struct io_sample *out) {
    u64 key = th_rq_key(sector, nr_sector);
    struct rq_set *set = th_rq_set(dev, key);
    if (!set)
        return 0;
    struct rq_slot *s = th_rq_find(set, dev, key);
    if (!s) {
        th_rq_unpaired();
        return 0;
    }
    u64 issue_ts = s->issue_ts;
    if (issue_ts == 0) {
        th_rq_free(s);
        th_rq_unpaired();
        return 0;
    }
    out->ts = bpf_ktime_get_ns();
    out->latency = out->ts - issue_ts;
    out->queue = s->insert_ts ? issue_ts - s->insert_ts : ~0ULL;
    out->dev = dev;
    out->bytes = s->bytes;
    out->pid = s->pid;
    __builtin_memcpy(&out->comm, s->comm, sizeof(out->comm));
    th_rq_free(s);
    if ((s64)out->latency < 0) {  // the key's next request refilled the slot as it was read
        th_count_lost();
        return 0;
    }
    return 1;
}

#ifndef TH_RAW_COMPLETE
TRACEPOINT_PROBE(block, block_rq_complete) {
    if (th_rq_untracked(args->nr_sector, args->rwbs[0]))
        return 0;
    struct io_sample out = {};
    if (!th_rq_done(args->dev, args->sector, args->nr_sector, &out))
        return 0;
    out.op[0] = args->rwbs[0];
    out.op[1] = args->rwbs[1];
    th_submit(args, &out, sizeof(out));
    return 0;
}
#else
// The completion as a raw tracepoint (block_rq_complete(struct request *rq, blk_status_t,
// unsigned int nr_bytes)), with struct offsets from the running kernel's BTF (-D flags,
// probes/btf.py). A completion runs in interrupt context: a perf-event tracepoint
// program there is skipped while any BPF tracing program runs on its CPU (it
// interrupted block_rq_issue's, say), and on 6.18 about one completion in 10^5 under
// load never reached it at all, uncounted; a raw tracepoint program is skipped only
// while that same program runs on the CPU, and such a skip is counted. The record's
// fields are the tracepoint's: dev = disk_devt(rq->q->disk), sector = blk_rq_pos(rq),
// nr_sector = nr_bytes >> 9, op from the first two letters blk_fill_rwbs() writes.
// Each bpf_probe_read_kernel() costs tens of ns: the request's members are read as one
// span (TH_RQ_SPAN bytes from TH_RQ_SPAN_OFF: q, cmd_flags and __sector lie within 64
// bytes), the disk's major and first_minor as another; TH_AT_* are offsets in a span.
#define TH_FIELD(buf, at, type) (*(type *)((buf) + (at)))

static __always_inline u32 th_disk_devt(char *q) {
    char *disk = NULL;
    char mm[TH_DISK_SPAN] = {};
    if (!q)
        return 0;
    bpf_probe_read_kernel(&disk, sizeof(disk), q + TH_OFF_Q_DISK);
    if (!disk)
        return 0;
    bpf_probe_read_kernel(mm, sizeof(mm), disk + TH_DISK_SPAN_OFF);
    return TH_FIELD(mm, TH_AT_DISK_MAJOR, u32) << 20 | TH_FIELD(mm, TH_AT_DISK_MINOR, u32);
}

static __always_inline void th_rwbs(u32 opf, char *op) {
    u32 o = opf & TH_REQ_OP_MASK;
    char c = o == TH_REQ_OP_WRITE ? 'W'
           : o == TH_REQ_OP_DISCARD || o == TH_REQ_OP_SECURE_ERASE ? 'D'
           : o == TH_REQ_OP_FLUSH ? 'F'
           : o == TH_REQ_OP_READ ? 'R' : 'N';
    if (opf & TH_REQ_PREFLUSH) {
        op[0] = 'F';
        op[1] = c;
        return;
    }
    op[0] = c;
    op[1] = o == TH_REQ_OP_SECURE_ERASE ? 'E'
          : opf & TH_REQ_FUA ? 'F'
          : opf & TH_REQ_RAHEAD ? 'A'
          : opf & TH_REQ_SYNC ? 'S'
          : opf & TH_REQ_META ? 'M' : 0;
}

RAW_TRACEPOINT_PROBE(block_rq_complete) {
    char *rq = (char *)ctx->args[0];
    u32 nr_sector = (u32)ctx->args[2] >> 9;
    char span[TH_RQ_SPAN] = {};
    bpf_probe_read_kernel(span, sizeof(span), rq + TH_RQ_SPAN_OFF);
    char op[2];
    th_rwbs(TH_FIELD(span, TH_AT_RQ_CMD_FLAGS, u32), op);
    if (th_rq_untracked(nr_sector, op[0]))
        return 0;
    u64 sector = TH_FIELD(span, TH_AT_RQ_SECTOR, u64);
    struct io_sample out = {};
    if (!th_rq_done(th_disk_devt(TH_FIELD(span, TH_AT_RQ_Q, char *)), sector, nr_sector, &out))
        return 0;
    out.op[0] = op[0];
    out.op[1] = op[1];
    th_submit(ctx, &out, sizeof(out));
    return 0;
}
#endif
