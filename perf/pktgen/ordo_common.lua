-- Shared helpers for the Ordo Pktgen-DPDK scripts (ordo_latency.lua, ordo_throughput.lua):
-- settings from the environment, the probe stream toward the leader, the rate conversion,
-- and the latency sampler's file. Loaded with dofile() from the scripts' own directory.
-- Tested against Pktgen-DPDK 23.06 (DPDK 22.11); see docs/pktgen.md.

local M = {}

-- env(NAME, default): a setting from the environment (strings; numbers via envn).
function M.env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

function M.envn(name, default)
    local v = tonumber(M.env(name, ""))
    if v == nil then
        return default
    end
    return v
end

-- The settings every script shares. The leader's MAC and IP are required: probes go to
-- the leader's probe port (a follower answers them too, but then the path is shorter).
function M.settings()
    local s = {
        port = M.env("ORDO_PG_PORT", "0"),
        dst_mac = M.env("ORDO_DST_MAC", nil),
        dst_ip = M.env("ORDO_DST_IP", nil),
        src_ip = M.env("ORDO_SRC_IP", "198.18.0.1/24"),
        src_port = M.envn("ORDO_SRC_PORT", 9001),
        probe_port = M.envn("ORDO_PROBE_PORT", 1028),
        probe_us = M.envn("ORDO_PROBE_US", 1000),
        link_mbps = M.envn("ORDO_LINK_MBPS", 0),
        frame_bytes = M.envn("ORDO_FRAME_BYTES", 128),
        secs = M.envn("ORDO_SECS", 10),
        warmup_ms = M.envn("ORDO_WARMUP_MS", 1000),
        sampler_file = M.env("ORDO_SAMPLER_FILE", "/tmp/ordo-pktgen-latency.txt"),
        sampler_n = M.envn("ORDO_SAMPLER_N", 100000),
        sampler_rate = M.envn("ORDO_SAMPLER_RATE", 1000),
        result_file = M.env("ORDO_RESULT_FILE", nil),
        quit = M.env("ORDO_QUIT", "1") == "1",
    }
    if s.dst_mac == nil or s.dst_ip == nil then
        error("ORDO_DST_MAC and ORDO_DST_IP (the leader's MAC and IPv4) are required")
    end
    return s
end

-- The link speed in Mbit/s: ORDO_LINK_MBPS, else parsed from pktgen.linkState
-- ("<UP-10000-FD>"), else 10000 (what veth PMDs report).
function M.link_mbps(s)
    if s.link_mbps > 0 then
        return s.link_mbps
    end
    local st = pktgen.linkState(s.port)
    local text = st and st[tonumber(s.port)]
    local mbps = text and tonumber(string.match(tostring(text), "UP%-(%d+)"))
    if mbps == nil or mbps <= 0 then
        return 10000
    end
    return mbps
end

-- Pktgen's rate is a percentage of the link: a request rate R (frames/s of frame_bytes,
-- plus 20 bytes of preamble and inter-frame gap each) as that percentage, at most 100.
function M.rate_pct(s, rps)
    local bits = rps * (s.frame_bytes + 20) * 8
    local pct = 100.0 * bits / (M.link_mbps(s) * 1e6)
    if pct > 100 then
        pct = 100
    end
    return pct
end

-- The port's single-packet template: Ordo's probe frame toward the leader. Latency
-- probes are built from it (UDP to the probe port; pktgen writes the 16-byte record,
-- magic 0xf00dcafe, index and TSC, at UDP payload offset 6).
function M.setup_probe_stream(s)
    local p = s.port
    pktgen.stop(p)
    pktgen.set_type(p, "ipv4")
    pktgen.set_proto(p, "udp")
    pktgen.set_mac(p, "dst", s.dst_mac)
    pktgen.set_ipaddr(p, "dst", s.dst_ip)
    pktgen.set_ipaddr(p, "src", s.src_ip)
    pktgen.set(p, "sport", s.src_port)
    pktgen.set(p, "dport", s.probe_port)
    pktgen.set(p, "size", 72)
    pktgen.set(p, "count", 0)
    pktgen.latency(p, "rate", s.probe_us)
    pktgen.latency(p, "entropy", 0)
end

-- Starts the latency sampler on the port: it writes each sampled latency to its file
-- when stopped. "simple" samples every Nth probe; rate is its samples per second.
function M.sampler_start(s)
    pktgen.latsampler_params(s.port, "simple", s.sampler_n, s.sampler_rate, s.sampler_file)
    pktgen.latsampler(s.port, "on")
end

function M.sampler_stop(s)
    pktgen.latsampler(s.port, "off")
end

-- Reads the sampler's file: a header line, then one sample per line (nanoseconds in
-- Pktgen 23.06). Returns the samples in microseconds, sorted.
function M.read_samples(path)
    local f = io.open(path, "r")
    if f == nil then
        return {}
    end
    local out = {}
    for line in f:lines() do
        local v = tonumber(string.match(line, "^%s*([%d%.]+)"))
        if v ~= nil then
            out[#out + 1] = v / 1000.0
        end
    end
    f:close()
    table.sort(out)
    return out
end

-- q-quantile (0..1) of a sorted array; nil when empty.
function M.quantile(sorted, q)
    local n = #sorted
    if n == 0 then
        return nil
    end
    local i = math.floor(q * (n - 1) + 0.5) + 1
    if i > n then
        i = n
    end
    return sorted[i]
end

-- The port's latency summary from pktStats (num_pkts, min/avg/max in microseconds).
function M.latency_stats(s)
    local st = pktgen.pktStats(s.port)[tonumber(s.port)]
    local lat = st and st.latency or {}
    return {
        num_pkts = lat.num_pkts or 0,
        num_skipped = lat.num_skipped or 0,
        min_us = lat.min_us or 0,
        avg_us = lat.avg_us or 0,
        max_us = lat.max_us or 0,
    }
end

-- The port's current rates (packets and Mbit/s each way) from portStats(port, "rate").
function M.rates(s)
    local r = pktgen.portStats(s.port, "rate")[tonumber(s.port)] or {}
    return {
        pkts_rx = r.pkts_rx or 0,
        pkts_tx = r.pkts_tx or 0,
        mbits_rx = r.mbits_rx or 0,
        mbits_tx = r.mbits_tx or 0,
    }
end

-- Appends one line to ORDO_RESULT_FILE (when set) and prints it.
function M.emit(s, line)
    print(line)
    if s.result_file ~= nil then
        local f = io.open(s.result_file, "a")
        if f ~= nil then
            f:write(line, "\n")
            f:close()
        end
    end
end

function M.fmt(v)
    if v == nil then
        return "nan"
    end
    return string.format("%.1f", v)
end

return M
