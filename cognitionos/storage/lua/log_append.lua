-- KEYS[1] stream, KEYS[2] its sequence counter (same hash tag); ARGV: payloads.
-- Sequence numbers are gapless; the timestamp is the server's (ns, as a string: Lua
-- numbers are doubles and cannot hold nanoseconds since the epoch exactly).
local t = redis.call('TIME')
local ts = t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
local n = #ARGV
local first = redis.call('INCRBY', KEYS[2], n) - n + 1
for i = 1, n do
  redis.call('XADD', KEYS[1], (first + i - 1) .. '-0', 't', ts, 'p', ARGV[i])
end
return {first, ts}
