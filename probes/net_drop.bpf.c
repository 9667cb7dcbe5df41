// net.drop: a packet freed as dropped (skb:kfree_skb), with its reason number.
// Reasons below 2 (not dropped yet / consumed) are not drops.

// The format names the enum; only its size (an int) matters here, not the headers' values.
enum skb_drop_reason { TH_SKB_DROP_REASON_ANY };

struct drop_sample {
    u64 ts;
    u32 reason;
    u32 protocol;
};

TRACEPOINT_PROBE(skb, kfree_skb) {
    u32 reason = args->reason;
    if (reason < 2)
        return 0;
    struct drop_sample out = {};
    out.ts = bpf_ktime_get_ns();
    out.reason = reason;
    out.protocol = args->protocol;
    th_submit(args, &out, sizeof(out));
    return 0;
}
