-- KEYS[1] entry hash. Returns {value, version, pttl} or nil.
local r = redis.call('HMGET', KEYS[1], 'v', 'ver')
if not r[1] then return false end
return {r[1], r[2], redis.call('PTTL', KEYS[1])}
