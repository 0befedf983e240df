-- A stand-in for Pktgen-DPDK's Lua API (23.06 names), so lint can run the Ordo pktgen
-- scripts with plain lua5.3: every call is checked against the names and argument counts
-- the scripts may use, stats are synthetic, and the latency sampler writes a file.
-- Usage: lua5.3 pktgen_stub.lua SCRIPT.lua

local calls = {}
local sampler = {}

local function check(name, n, want)
    calls[name] = (calls[name] or 0) + 1
    if n ~= want then
        error(string.format("pktgen.%s: %d arguments, Pktgen takes %d", name, n, want), 3)
    end
end

local function fn(name, want, body)
    return function(...)
        check(name, select("#", ...), want)
        if body then
            return body(...)
        end
    end
end

local api = {
    set = fn("set", 3), set_type = fn("set_type", 2), set_proto = fn("set_proto", 2),
    set_mac = fn("set_mac", 3), set_ipaddr = fn("set_ipaddr", 3),
    pcap = fn("pcap", 2), clr = fn("clr", 0), start = fn("start", 1), stop = fn("stop", 1),
    delay = fn("delay", 1), screen = fn("screen", 1), quit = fn("quit", 0),
    latsampler_params = fn("latsampler_params", 5, function(_, kind, n, rate, file)
        assert(kind == "simple" or kind == "poisson", "sampler type " .. tostring(kind))
        assert(n > 0 and rate > 0, "sampler count and rate")
        sampler.file = file
    end),
    latsampler = fn("latsampler", 2, function(_, state)
        if state == "off" and sampler.file then
            local f = assert(io.open(sampler.file, "w"))
            f:write("Latency\n")
            for i = 1, 1000 do
                f:write(string.format("%d\n", 20000 + i * 10))
            end
            f:close()
        end
    end),
    linkState = fn("linkState", 1, function(p) return {[tonumber(p)] = "<UP-10000-FD>"} end),
    pktStats = fn("pktStats", 1, function(p)
        return {[tonumber(p)] = {latency = {num_pkts = 1000, num_skipped = 0, min_us = 20,
            avg_us = 25, max_us = 90}}}
    end),
    portStats = fn("portStats", 2, function(p, what)
        assert(what == "rate" or what == "port", "portStats kind " .. tostring(what))
        return {[tonumber(p)] = {pkts_rx = 9000, pkts_tx = 10000, mbits_rx = 9, mbits_tx = 10}}
    end),
}
-- pktgen.latency(port, "enable"|"disable") or (port, "rate"|"entropy", N)
api.latency = function(...)
    local n = select("#", ...)
    calls.latency = (calls.latency or 0) + 1
    if n ~= 2 and n ~= 3 then
        error("pktgen.latency: takes 2 or 3 arguments", 2)
    end
end

pktgen = setmetatable(api, {__index = function(_, k)
    error("pktgen." .. tostring(k) .. " is not part of the Pktgen Lua API the kit targets", 2)
end})
function printf(fmt, ...) io.write(string.format(fmt, ...)) end
package.preload["Pktgen"] = function() return true end

local script = assert(arg[1], "usage: lua5.3 pktgen_stub.lua SCRIPT.lua")
dofile(script)
assert(calls.quit == 1, "the script did not quit Pktgen")
