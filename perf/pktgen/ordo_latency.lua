-- Ordo latency at a fixed request rate, for Pktgen-DPDK 23.06 (see docs/pktgen.md).
-- Requests: a pcap of Ordo client requests loaded with `-s 0:requests.pcap` (ordo-pcapgen)
-- replayed at ORDO_RATE requests/s; probes: Pktgen latency frames to the leader's probe
-- port every ORDO_PROBE_US microseconds, answered by the replica after the request path.
-- Prints pktStats(port)[port].latency and the quantiles of the latency sampler's file.
-- Run: pktgen ... -- -P -m "[1].0" -s 0:requests.pcap -f perf/pktgen/ordo_latency.lua
-- Environment: ORDO_DST_MAC, ORDO_DST_IP (leader; required), ORDO_RATE (requests/s, 10000),
--   ORDO_PCAP (1: replay the loaded pcap; 0: probes only), ORDO_SECS (10), ORDO_PROBE_US
--   (1000), ORDO_SAMPLER_FILE, ORDO_RESULT_FILE (append the result line), ORDO_QUIT (1).

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local C = dofile(here .. "ordo_common.lua")

local function run()
    local s = C.settings()
    local rate = C.envn("ORDO_RATE", 10000)
    local use_pcap = C.env("ORDO_PCAP", "1") == "1"
    local p = s.port

    pktgen.screen("off")
    C.setup_probe_stream(s)
    if use_pcap then
        pktgen.pcap(p, "on")
        pktgen.set(p, "rate", C.rate_pct(s, rate))
    else
        -- Probes only: the template frames carry no probe record, the replica counts
        -- and drops them (rx_ignored); keep them at the lowest rate Pktgen takes.
        pktgen.set(p, "rate", 0.01)
    end
    pktgen.clr()
    pktgen.latency(p, "enable")
    pktgen.start(p)
    pktgen.delay(s.warmup_ms)
    pktgen.clr()
    C.sampler_start(s)

    local rx, tx = 0, 0
    for i = 1, s.secs do
        pktgen.delay(1000)
        local r = C.rates(s)
        rx = rx + r.pkts_rx
        tx = tx + r.pkts_tx
        printf("ordo_latency: t=%ds tx_pps=%d rx_pps=%d\n", i, r.pkts_tx, r.pkts_rx)
    end

    C.sampler_stop(s)
    pktgen.stop(p)
    local lat = C.latency_stats(s)
    pktgen.latency(p, "disable")
    if use_pcap then
        pktgen.pcap(p, "off")
    end

    local samples = C.read_samples(s.sampler_file)
    C.emit(s, string.format(
        "ordo_latency: rate=%d pcap=%d secs=%d tx_pps=%.0f rx_pps=%.0f probes=%d "
            .. "min_us=%s avg_us=%s max_us=%s samples=%d p50_us=%s p99_us=%s p999_us=%s",
        rate, use_pcap and 1 or 0, s.secs, tx / s.secs, rx / s.secs, lat.num_pkts,
        C.fmt(lat.min_us), C.fmt(lat.avg_us), C.fmt(lat.max_us), #samples,
        C.fmt(C.quantile(samples, 0.50)), C.fmt(C.quantile(samples, 0.99)),
        C.fmt(C.quantile(samples, 0.999))))
    if s.quit then
        pktgen.quit()
    end
end

run()
