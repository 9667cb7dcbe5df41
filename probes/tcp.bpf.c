// tcp.retransmit: addresses, ports and state straight from the tracepoint's arrays.

struct retrans_sample {
    u64 ts;
    u16 sport;
    u16 dport;
    u16 family;
    u16 pad;
    u32 state;
    u8 saddr[16];  // v4 in the first 4 bytes
    u8 daddr[16];
    u32 pad2;
};

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb) {
    struct retrans_sample out = {};
    out.ts = bpf_ktime_get_ns();
    out.sport = args->sport;
    out.dport = args->dport;
    out.family = args->family;
    out.state = args->state;
    if (args->family == 10) {  // AF_INET6
        __builtin_memcpy(&out.saddr, args->saddr_v6, 16);
        __builtin_memcpy(&out.daddr, args->daddr_v6, 16);
    } else {
        __builtin_memcpy(&out.saddr, args->saddr, 4);
        __builtin_memcpy(&out.daddr, args->daddr, 4);
    }
    th_submit(args, &out, sizeof(out));
    return 0;
}
