-- Ordo throughput under a pcap replay, for Pktgen-DPDK 23.06 (see docs/pktgen.md).
-- Replays the pcap loaded with `-s 0:requests.pcap` (Ordo client requests from
-- ordo-pcapgen, no-session mode so every loop executes again) at each offered rate of
-- ORDO_RATES, with latency probes mixed in, and reads portStats(port, "rate"): rx packets/s
-- are the replies (one per request, plus the probes' echoes). One result line per rate.
-- Run: pktgen ... -- -P -m "[1].0" -s 0:requests.pcap -f perf/pktgen/ordo_throughput.lua
-- Environment: ORDO_DST_MAC, ORDO_DST_IP (leader; required), ORDO_RATES (requests/s,
--   "10000 50000 100000 200000"), ORDO_SECS (5 per rate), ORDO_PROBE_US (1000),
--   ORDO_FRAME_BYTES (mean request frame size, 128), ORDO_LINK_MBPS, ORDO_RESULT_FILE.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local C = dofile(here .. "ordo_common.lua")

-- One offered rate: start, settle, average the per-second rates, stop.
local function step(s, rate)
    local p = s.port
    pktgen.set(p, "rate", C.rate_pct(s, rate))
    pktgen.clr()
    pktgen.latency(p, "enable")
    pktgen.start(p)
    pktgen.delay(s.warmup_ms)
    pktgen.clr()
    local rx, tx, best = 0, 0, 0
    for _ = 1, s.secs do
        pktgen.delay(1000)
        local r = C.rates(s)
        rx = rx + r.pkts_rx
        tx = tx + r.pkts_tx
        if r.pkts_rx > best then
            best = r.pkts_rx
        end
    end
    pktgen.stop(p)
    local lat = C.latency_stats(s)
    pktgen.latency(p, "disable")
    pktgen.delay(500)
    C.emit(s, string.format(
        "ordo_throughput: offered=%d tx_pps=%.0f rx_pps=%.0f rx_best_pps=%d answered=%.3f "
            .. "probes=%d probe_avg_us=%s probe_max_us=%s",
        rate, tx / s.secs, rx / s.secs, best, tx > 0 and rx / tx or 0, lat.num_pkts,
        C.fmt(lat.avg_us), C.fmt(lat.max_us)))
end

local function run()
    local s = C.settings()
    s.secs = C.envn("ORDO_SECS", 5)
    pktgen.screen("off")
    C.setup_probe_stream(s)
    pktgen.pcap(s.port, "on")
    for r in string.gmatch(C.env("ORDO_RATES", "10000 50000 100000 200000"), "%d+") do
        step(s, tonumber(r))
    end
    pktgen.pcap(s.port, "off")
    if s.quit then
        pktgen.quit()
    end
end

run()
