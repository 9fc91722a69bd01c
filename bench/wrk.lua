-- wrk's latency percentiles (microseconds), counts, and responses other than 200 (a redirect
-- to the sign-in page would otherwise pass for a fast page), as one JSON line at the end.
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  not_200 = 0
end

response = function(status, headers, body)
  if status ~= 200 then
    not_200 = not_200 + 1
  end
end

done = function(summary, latency, requests)
  local other = 0
  for _, thread in ipairs(threads) do
    other = other + (thread:get("not_200") or 0)
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.timeout
  io.write(string.format(
    '\nBENCH {"p50": %d, "p95": %d, "p99": %d, "mean": %.1f, "requests": %d, ' ..
    '"duration_us": %d, "errors": %d, "not_200": %d}\n',
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    summary.requests, summary.duration, errors, other))
end
