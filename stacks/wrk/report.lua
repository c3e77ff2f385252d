-- wrk's done() hook: one line "LAB-WRK-JSON {...}" after wrk's own summary, read by lab.bench.wrk.
-- Latencies are in microseconds; errors.status counts responses with a status above 399.

local function number(value)
  if value ~= value or value == math.huge or value == -math.huge then
    return "null" -- NaN or infinite: no requests completed
  end
  return string.format("%.17g", value)
end

local function distribution(stats, points)
  local parts = {}
  for _, p in ipairs(points) do
    parts[#parts + 1] = string.format('"%s": %s', p, number(stats:percentile(p)))
  end
  return string.format('{"min": %s, "max": %s, "mean": %s, "stdev": %s, "percentiles": {%s}}',
    number(stats.min), number(stats.max), number(stats.mean), number(stats.stdev), table.concat(parts, ", "))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LAB-WRK-JSON {"duration_us": %.0f, "requests": %.0f, "bytes": %.0f, ' ..
    '"errors": {"connect": %.0f, "read": %.0f, "write": %.0f, "status": %.0f, "timeout": %.0f}, ' ..
    '"latency_us": %s, "thread_requests_per_s": %s}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    distribution(latency, {50, 75, 90, 99, 99.9}),
    distribution(requests, {50})))
end
