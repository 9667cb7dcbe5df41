"""A valid rule file using every clause: the seed of mutation and round-trip tests."""

VALID = """# a file
define hot_write = op == "write" and bytes >= 64KiB
define lat = p99(disk.io.latency)

rule txg_sync_disk_stall
  "Disk p99 latency rises around ZFS transaction-group syncs"
  when lat > 1ms and p90(disk.io.latency where hot_write) > 5 * p50(disk.io.latency over 5m)
  within 200ms of zfs.txg.sync where pool == "tank"
  by dev
  severity warning
  cooldown 1m
  summary "p99 {p99(disk.io.latency)} around txg"

rule periodic_disk_spikes
  when percentile(disk.io.latency where op == "read" over 1s, 99.9) > 5ms
  over 1s for 2s
  periodic every 30s ± 3s at least 3 times
  explain by zfs.txg.sync, fs.commit within 2s
  evidence disk.io.latency, disk.io.queue
  baseline 5m
  notify ops
  labels team = "storage"

rule memcg_growth_before_oom
  when growth(memcg.usage) > 1MiB/s or predict(memcg.usage over 10m, 5m) > last(memcg.limit)
  before oom.kill within 5m
  by cgroup
  severity critical

rule drops
  when count(net.drop where not reason in ("A", "B") and reason matches "^SK\\d") > 100
  during mm.reclaim
"""
