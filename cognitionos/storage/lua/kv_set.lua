-- KEYS[1] entry hash; ARGV: value, ttl_ms (0 = none), expected version (-1 = any),
-- change channel, logical key. Returns the new version, or nil when the version differs.
local expected = tonumber(ARGV[3])
if expected >= 0 then
  local cur = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
  if cur ~= expected then return false end
end
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'v', ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
redis.call('PUBLISH', ARGV[4], cjson.encode({k = ARGV[5], v = ver, d = false}))
return ver
