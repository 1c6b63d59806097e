-- First exposure of each unit fixes its arm and adds 1 to the arm's n.
-- KEYS[1] hash unit -> arm; KEYS[2] hash arm -> n (and "\0multi"); KEYS[3] set of units
-- exposed to several arms. ARGV: the current phase's field prefix ("\31p<phase>\31"), then
-- unit1, arm1, unit2, arm2, ... A first exposure also adds 1 to KEYS[2] field prefix .. arm
-- (the arm's units of that phase).
-- Returns 1 per record that was the unit's first exposure, else 0.
local out = {}
local phase = ARGV[1]
for i = 2, #ARGV, 2 do
  local unit, arm = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', KEYS[1], unit, arm) == 1 then
    redis.call('HINCRBY', KEYS[2], arm, 1)
    redis.call('HINCRBY', KEYS[2], phase .. arm, 1)
    out[#out + 1] = 1
  else
    if redis.call('HGET', KEYS[1], unit) ~= arm and redis.call('SADD', KEYS[3], unit) == 1 then
      redis.call('HINCRBY', KEYS[2], '\0multi', 1)
    end
    out[#out + 1] = 0
  end
end
return out
