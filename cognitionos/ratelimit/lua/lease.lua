-- cognitionos rate limiter: leased quotas (see cognitionos/ratelimit/_lease.py).
-- One call takes a slice of a key's remaining quota for one holder (a process's limiter),
-- or decides one hit when the quota left is too small to share, and takes back the unused
-- part of the holder's previous slice. A slice is charged to the window (fixed window) or
-- bucket (sliding-window counter) it is taken in, exactly like that many hits, so the
-- key's state stays the one decide.lua reads and writes: leased and per-hit limiters
-- share one count, and no process can use more than it was charged for.
--
-- KEYS: state, ban record, lease set: ZSET of "holder window grant expiry_us id" scored by the
--       end of the slice's window. A lease counts as a live holder until its expiry; its
--       unused part may come back until its window ends (the holder stopped using it at
--       its expiry, so what it returns is unused whenever it arrives).
-- ARGV[1] "now op code P A holder want cost share min_slice ttl ret_id ret_amount
--          min_ttl_ms id": now -1 means server TIME; op 'a' acquire (decide a hit of cost),
--          'r' return only; code 1 fixed window, 3 sliding-window counter; id: the holder's
--          number for a new lease; ret_id: the lease whose unused ret_amount comes back
--          (-1: none). A return applies only to that very lease, once: sent twice (a lost
--          reply), or after the holder leased the key again, it changes nothing.
-- Reply (op 'a'): "status remaining reset_us retry_us grant window expiry_us holders
--   returned" (returned: how much of the previous slice was taken back)
--   status L: a slice of `grant` was charged, the hit is decided from it (admitted);
--          A: admitted per hit; R: refused; B: banned (reset/retry = ban left).
--   expiry_us: how long the slice may be used, relative to now (never past its window).
-- Reply (op 'r'): the amount taken back.

local NEVER = -1

local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function fmt(x)
  return string.format('%.0f', x)
end

local a = {}
for w in string.gmatch(ARGV[1], '%S+') do a[#a + 1] = w end
local now, op, code, P, A = tonumber(a[1]), a[2], tonumber(a[3]), tonumber(a[4]), tonumber(a[5])
local holder, want, cost = a[6], tonumber(a[7]), tonumber(a[8])
local share, mins, ttl = tonumber(a[9]), tonumber(a[10]), tonumber(a[11])
local rid, ramt, minttl, lid = tonumber(a[12]), tonumber(a[13]), tonumber(a[14]), a[15]
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function px(us)
  return math.max(1, minttl, -idiv(-us, 1000))
end

local v = redis.call('MGET', KEYS[1], KEYS[2])
local s, rec = v[1], v[2]
local start = idiv(now, P) * P
local cur, prev = 0, 0
if s then
  local x, y, z = string.match(s, '^(%S+) (%S+) ?(%S*)$')
  x, y, z = tonumber(x), tonumber(y), tonumber(z)
  if code == 1 then
    if x == start then cur = y end
  elseif x == start then
    cur, prev = y, z
  elseif x == start - P then
    prev = y
  elseif x and x > start then  -- the clock went backwards: keep counting what we saw
    cur, prev = y, z
  end
end

-- live leases of other holders; this holder's previous lease (at most one per key).
-- Skipped when the caller had no slice to give back (rid -1) and no slice could be granted
-- even to a sole holder: near the limit a hit then costs what decide.lua's would
local L = KEYS[3]
local others, mine, mwin, mgrant, mid = 0, nil, nil, 0, nil
local members = {}
local function estimate()
  if code == 3 then return idiv(prev * (P - (now - start)), P) + cur end
  return cur
end
if op == 'r' or rid >= 0
    or math.floor(math.max(0, A - estimate()) / share) >= math.max(mins, cost) then
  redis.call('ZREMRANGEBYSCORE', L, '-inf', fmt(now))
  members = redis.call('ZRANGE', L, 0, -1)
end
for _, m in ipairs(members) do
  local h, w, g, e, i = string.match(m, '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
  if h == holder then
    mine, mwin, mgrant, mid = m, tonumber(w), tonumber(g), tonumber(i)
  elseif tonumber(e) > now then
    others = others + 1
  end
end

-- take back the unused part of this holder's previous slice, into the bucket it was
-- charged to (a slice of a window that has rolled away in a fixed window is gone)
local returned, changed = 0, false
if mine then
  redis.call('ZREM', L, mine)
  if ramt > 0 and mid == rid then
    local back = math.min(ramt, mgrant)
    if mwin == start then
      back = math.min(back, cur)
      cur = cur - back
      returned, changed = back, back > 0
    elseif code == 3 and mwin == start - P then
      back = math.min(back, prev)
      prev = prev - back
      returned, changed = back, back > 0
    end
  end
end

local function save()
  if code == 1 then
    redis.call('SET', KEYS[1], fmt(start) .. ' ' .. fmt(cur), 'PX', px(start + P - now))
  else
    redis.call('SET', KEYS[1], fmt(start) .. ' ' .. fmt(cur) .. ' ' .. fmt(prev),
      'PX', px(start + 2 * P - now))
  end
end

if op == 'r' then
  if changed then save() end
  return fmt(returned)
end

if rec then
  local untl = tonumber(string.match(rec, '^(%S+)'))
  if untl > now then
    if changed then save() end
    local wait = fmt(untl - now)
    return 'B 0 ' .. wait .. ' ' .. wait .. ' 0 0 0 ' .. (others + 1) .. ' ' .. fmt(returned)
  end
end

local weighted = estimate()
local remaining = math.max(0, A - weighted)
local holders = others + 1
local grant = math.min(want, math.floor(remaining / (share * holders)))
local wend = start + P

if grant >= mins and grant >= cost then
  cur = cur + grant
  save()
  local expiry = math.min(now + ttl, wend)
  redis.call('ZADD', L, fmt(wend), holder .. ' ' .. fmt(start) .. ' ' .. fmt(grant) .. ' '
    .. fmt(expiry) .. ' ' .. lid)
  redis.call('PEXPIRE', L, px(wend - now))
  local reset = wend - now
  if code == 3 then reset = start + 2 * P - now end
  return 'L ' .. fmt(remaining - grant) .. ' ' .. fmt(reset) .. ' -1 ' .. fmt(grant) .. ' '
    .. fmt(start) .. ' ' .. fmt(expiry - now) .. ' ' .. holders .. ' ' .. fmt(returned)
end

-- too little left to share: decide this hit on its own, as decide.lua would
if weighted + cost <= A then
  cur = cur + cost
  save()
  local reset = wend - now
  if code == 3 then reset = start + 2 * P - now end
  return 'A ' .. fmt(A - weighted - cost) .. ' ' .. fmt(reset) .. ' -1 0 ' .. fmt(start)
    .. ' 0 ' .. holders .. ' ' .. fmt(returned)
end
if changed then save() end
local reset = wend - now
local retry = NEVER
if code == 1 then
  if cost <= A then retry = reset end
else
  if cur > 0 then reset = start + 2 * P - now end
  if cost <= A then
    if cur + cost <= A then
      retry = start + P - idiv((A - cost - cur + 1) * P - 1, prev) - now
    else
      retry = start + P + math.max(0, P - idiv((A - cost + 1) * P - 1, cur)) - now
    end
    retry = math.max(1, retry)
  end
end
return 'R ' .. fmt(remaining) .. ' ' .. fmt(reset) .. ' ' .. fmt(retry) .. ' 0 ' .. fmt(start)
  .. ' 0 ' .. holders .. ' ' .. fmt(returned)
