-- KEYS[1] entry hash; ARGV: change channel, logical key. Returns 1 if it existed.
local ver = redis.call('HGET', KEYS[1], 'ver')
if not ver then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], cjson.encode({k = ARGV[2], v = tonumber(ver), d = true}))
return 1
