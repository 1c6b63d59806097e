-- cognitionos rate limiter: one atomic decision over one or more limits.
-- Mirrors cognitionos/ratelimit/_core.py and _batch.py rule for rule, on integer
-- microseconds (exact in Lua doubles below 2^53).
--
-- KEYS, four per request i: state, aux (sliding-log totals), ban record, violations.
-- ARGV[1] "now_us mode n min_ttl_ms": now_us -1 means server TIME; mode 0 = look only,
--         1 = charge all or none, 2 = independent groups (hit_batch), 3 = independent
--         single string-state limits (hit_batch's common case, see the end of the script),
--         4 = mode 1 when every limit is string-state and there is no auto-block (two
--         KEYS per request: state, ban record; see the mode-4 block);
--         min_ttl_ms floors key TTLs when the caller supplies the time.
-- ARGV[2] modes 0/1: "" (no auto-block) or "max_violations find_window_us ban_time_us
--         growth max_ban_us forget_us" (max_ban_us -1: uncapped).
--         mode 2: group sizes "g1 g2 ...": each group is all-or-nothing on its own,
--         decided in order, as separate calls would be (no auto-block in this mode).
-- ARGV[2 + i] "code period amount burst cost allow_listed lease" (lease '-': none).
-- Reply: one string of integers, five per request (allowed remaining reset_us retry_us
--        banned), then charged and bans imposed (mode 2: that, group after group; mode 3:
--        the five per request only).
-- Few pre-formatted arguments and a one-string reply: packing and parsing many small
-- values costs the client more than the script spends on string.match. Every local
-- function below is a closure created on each call, so there are few of them.

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

local now, mode, n, minttl = string.match(ARGV[1], '^(%S+) (%S+) (%S+) (%S+)$')
now, n, minttl = tonumber(now), tonumber(n), tonumber(minttl)
local commit = mode ~= '0'
local banargs = ''
if mode == '0' or mode == '1' then banargs = ARGV[2] end
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function px(us)
  return math.max(1, minttl, -idiv(-us, 1000))
end

-- period -> {clock-aligned window start, its decimal string}: the same for every key of
-- this call, so a batch divides and formats once per period, not once per key
local wins = {}
local function window(P)
  local w = wins[P]
  if not w then
    local start = idiv(now, P) * P
    w = {start, fmt(start)}
    wins[P] = w
  end
  return w
end

-- string-state algorithms: returns allowed, remaining, reset, retry, new state string
local function step(code, s, P, A, B, cost)
  local x, y, z
  if s then
    x, y, z = string.match(s, '^(%S+) (%S+) ?(%S*)$')
    x, y, z = tonumber(x), tonumber(y), tonumber(z)
  end
  if code == 1 or code == 2 then
    local start, count, sstart
    if code == 1 then
      local w = window(P)
      start, sstart = w[1], w[2]
      count = 0
      if x == start then count = y end
    elseif x and now < x + P then
      start, count = x, y
    else
      start, count = now, 0
    end
    local reset = start + P - now
    local used = count + cost
    if used <= A then
      return 1, A - used, reset, NEVER, (sstart or fmt(start)) .. ' ' .. used
    end
    local retry = NEVER
    if cost <= A then retry = reset end
    if code == 2 and count == 0 then reset = 0 end
    return 0, A - count, reset, retry, nil
  elseif code == 3 then
    local w = window(P)
    local start = w[1]
    local cur, prev = 0, 0
    if x == start then
      cur, prev = y, z
    elseif x == start - P then
      prev = y
    elseif x and x > start then
      cur, prev = y, z
    end
    local weighted = idiv(prev * (P - (now - start)), P) + cur
    if weighted + cost <= A then
      cur = cur + cost
      local reset = 0
      if cur > 0 then
        reset = start + 2 * P - now
      elseif prev > 0 then
        reset = start + P - now
      end
      return 1, A - weighted - cost, reset, NEVER, w[2] .. ' ' .. cur .. ' ' .. prev
    end
    local reset = start + P - now
    if cur > 0 then reset = start + 2 * P - now end
    local rem = math.max(0, A - weighted)
    if cost > A then
      return 0, rem, reset, NEVER, nil
    end
    local retry
    if cur + cost <= A then
      retry = start + P - idiv((A - cost - cur + 1) * P - 1, prev) - now
    else
      retry = start + P + math.max(0, P - idiv((A - cost + 1) * P - 1, cur)) - now
    end
    return 0, rem, reset, math.max(1, retry), nil
  elseif code == 5 then
    local cap = B * P
    local level, last = cap, now
    if x then
      level = x
      if now > y and level < cap then
        if now - y >= -idiv(-(cap - level), A) then
          level = cap
        else
          level = level + (now - y) * A
        end
      end
    end
    local need = cost * P
    if level >= need then
      level = level - need
      return 1, idiv(level, P), -idiv(-(cap - level), A), NEVER, fmt(level) .. ' ' .. fmt(last)
    end
    local retry = NEVER
    if cost <= B then retry = -idiv(-(need - level), A) end
    return 0, math.max(0, idiv(level, P)), -idiv(-(cap - level), A), retry, nil
  end
  -- GCRA: x = theoretical arrival time, y = its fraction (in 1/A microseconds)
  local used = 0
  if x and (x > now or (x == now and y > 0)) then
    used = (x - now) * A + y
  end
  local limit = B * P
  local nu = used + cost * P
  if nu <= limit then
    local tat = idiv(nu, A)
    return 1, idiv(limit - nu, P), -idiv(-nu, A), NEVER, fmt(now + tat) .. ' ' .. (nu - tat * A)
  end
  local retry = NEVER
  if cost <= B then retry = -idiv(-(nu - limit), A) end
  return 0, idiv(limit - used, P), -idiv(-used, A), retry, nil
end

-- exact sliding log: ZSET of "ts:seq:cost" scored by ts, running total in aux.n
local function log_eval(key, aux, P, A, cost)
  local cut = fmt(now - P)
  local total = tonumber(redis.call('HGET', aux, 'n')) or 0
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', cut)
  if #expired > 0 then
    for _, m in ipairs(expired) do
      total = total - tonumber(string.match(m, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cut)
    redis.call('HSET', aux, 'n', fmt(total))
  end
  if total == 0 then
    if cost <= A then
      local r = 0
      if cost > 0 then r = P end
      return 1, A - cost, r, NEVER
    end
    return 0, A, 0, NEVER
  end
  local last = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  if total + cost <= A then
    local reset = last + P - now
    if cost > 0 then reset = math.max(last, now) + P - now end
    return 1, A - total - cost, reset, NEVER
  end
  local reset = last + P - now
  local rem = math.max(0, A - total)
  if cost > A then
    return 0, rem, reset, NEVER
  end
  -- walk from the oldest entry until enough cost has expired
  local need, acc, i = total + cost - A, 0, 0
  while true do
    local chunk = redis.call('ZRANGE', key, i, i + 63, 'WITHSCORES')
    if #chunk == 0 then
      return 0, rem, reset, reset
    end
    for j = 1, #chunk, 2 do
      acc = acc + tonumber(string.match(chunk[j], ':(%d+)$'))
      if acc >= need then
        return 0, rem, reset, math.max(1, tonumber(chunk[j + 1]) + P - now)
      end
    end
    i = i + 64
  end
end

-- concurrency: ZSET of "lease:cost" scored by expiry
local function conc_eval(key, ttl, A, cost)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
  local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local used = 0
  for j = 1, #members, 2 do
    used = used + tonumber(string.match(members[j], ':(%d+)$'))
  end
  local maxexp = now
  if #members > 0 then maxexp = tonumber(members[#members]) end
  if used + cost <= A then
    return 1, A - used - cost, math.max(maxexp, now + ttl) - now, NEVER
  end
  local reset = maxexp - now
  if cost > A then
    return 0, A - used, reset, NEVER
  end
  local freed = 0
  for j = 1, #members, 2 do
    freed = freed + tonumber(string.match(members[j], ':(%d+)$'))
    if used - freed + cost <= A then
      return 0, A - used, reset, tonumber(members[j + 1]) - now
    end
  end
  return 0, A - used, reset, reset
end

-- mode 3: n independent requests, one string-state limit each (codes 1, 2, 3, 5, 6) and
-- no auto-block. KEYS, two per request: state, ban record. ARGV[2 + i] "code period amount
-- burst cost". Same decisions as mode 2 with groups of one, without its tables; the reply
-- has five integers per request (allowed remaining reset_us retry_us banned) and no more.
if mode == '3' then
  local values = redis.call('MGET', unpack(KEYS))
  local written = {}  -- states charged by this call (a key may come back later in it)
  local parsed = {}
  local admits = {}  -- reset -> {its key TTL, its reply tail}: keys of one period share it
  local out = {}
  for i = 1, n do
    local a = ARGV[i + 2]
    local p = parsed[a]
    if not p then
      local code, P, A, B, cost = string.match(a, '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
      p = {tonumber(code), tonumber(P), tonumber(A), tonumber(B), tonumber(cost)}
      parsed[a] = p
    end
    local key = KEYS[2 * i - 1]
    local rec = values[2 * i]
    local untl = rec and tonumber(string.match(rec, '^(%S+)'))
    if untl and untl > now then
      local wait = fmt(untl - now)
      out[i] = '0 0 ' .. wait .. ' ' .. wait .. ' 1'
    else
      local s = written[key]
      if s == nil then s = values[2 * i - 1] or nil end
      local ok, rem, reset, retry, new = step(p[1], s, p[2], p[3], p[4], p[5])
      if ok == 1 then
        local m = admits[reset]
        if not m then
          m = {px(reset), ' ' .. reset .. ' -1 0'}
          admits[reset] = m
        end
        redis.call('SET', key, new, 'PX', m[1])
        written[key] = new
        out[i] = '1 ' .. rem .. m[2]
      elseif retry == NEVER then
        out[i] = '0 ' .. rem .. ' ' .. reset .. ' -1 0'
      else
        out[i] = '0 ' .. rem .. ' ' .. reset .. ' ' .. retry .. ' 0'
      end
    end
  end
  return table.concat(out, ' ')
end

-- mode 4: hit/hit_many all or nothing (mode 1) when every limit is a string-state
-- algorithm (codes 1, 2, 3, 5, 6) and there is no auto-block. KEYS, two per request: state,
-- ban record; ARGV[2 + i] "code period amount burst cost". One MGET, every step decided on
-- the states read, then every new state written only if all admit and no key is banned.
-- Same decisions and reply as mode 1.
if mode == '4' then
  local values = redis.call('MGET', unpack(KEYS))
  local out, news, resets = {}, {}, {}
  local all_ok = true
  for i = 1, n do
    local rec = values[2 * i]
    local untl = rec and tonumber(string.match(rec, '^(%S+)'))
    if untl and untl > now then
      local wait = fmt(untl - now)
      out[i] = '0 0 ' .. wait .. ' ' .. wait .. ' 1'
      all_ok = false
    else
      local code, P, A, B, cost = string.match(ARGV[i + 2], '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
      local ok, rem, reset, retry, new = step(
        tonumber(code), values[2 * i - 1] or nil, tonumber(P), tonumber(A), tonumber(B),
        tonumber(cost))
      if ok == 1 then
        news[i], resets[i] = new, reset
        out[i] = '1 ' .. rem .. ' ' .. reset .. ' -1 0'
      else
        all_ok = false
        if retry == NEVER then
          out[i] = '0 ' .. rem .. ' ' .. reset .. ' -1 0'
        else
          out[i] = '0 ' .. rem .. ' ' .. reset .. ' ' .. retry .. ' 0'
        end
      end
    end
  end
  if not all_ok then
    return table.concat(out, ' ') .. ' 0 0'
  end
  for i = 1, n do
    redis.call('SET', KEYS[2 * i - 1], news[i], 'PX', px(resets[i]))
  end
  return table.concat(out, ' ') .. ' 1 0'
end

local reqs = {}
local parsed = {}  -- a batch repeats a few argument strings many times: parse each once
for i = 1, n do
  local a = ARGV[i + 2]
  local p = parsed[a]
  if not p then
    local code, P, A, B, cost, allow, lease = string.match(
      a, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d) (%S+)$')
    p = {tonumber(code), tonumber(P), tonumber(A), tonumber(B), tonumber(cost), allow == '1', lease}
    parsed[a] = p
  end
  local k = (i - 1) * 4
  reqs[i] = {
    p[1], p[2], p[3], p[4], p[5], p[6], p[7], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4],
  }
end
-- fields of a request
local CODE, PER, AMT, BUR, COST, ALLOW, LEASE, KEY, AUX, BAN, VIOL = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

-- decide the requests rs (all or nothing) and return their part of the reply
-- pre (mode 2): key -> value (false: none) read for the whole batch, kept current here
local function decide(rs, pre)
  local n = #rs
  if n == 1 and banargs == '' and rs[1][CODE] ~= 4 and rs[1][CODE] ~= 7 then
    -- one string-state limit and no auto-block: the general path below, without its tables
    local r = rs[1]
    local rec, s
    if pre then
      rec, s = pre[r[BAN]], pre[r[KEY]]
    else
      local v = redis.call('MGET', r[BAN], r[KEY])
      rec, s = v[1], v[2]
    end
    if rec then
      local untl = tonumber(string.match(rec, '^(%S+)'))
      if untl > now then
        local wait = fmt(untl - now)
        return '0 0 ' .. wait .. ' ' .. wait .. ' 1 0 0'
      end
    end
    local ok, rem, reset, retry, new = step(r[CODE], s or nil, r[PER], r[AMT], r[BUR], r[COST])
    if ok == 1 then
      if commit then
        redis.call('SET', r[KEY], new, 'PX', px(reset))
        if pre then pre[r[KEY]] = new end
        return '1 ' .. rem .. ' ' .. reset .. ' -1 0 1 0'
      end
      return '1 ' .. rem .. ' ' .. reset .. ' -1 0 0 0'
    end
    if retry == NEVER then
      return '0 ' .. rem .. ' ' .. reset .. ' -1 0 0 0'
    end
    return '0 ' .. rem .. ' ' .. reset .. ' ' .. retry .. ' 0 0 0'
  end
  local out = {}
  local results = {}

  -- one MGET for every ban record and string state: each redis.call has a fixed cost
  local fetched
  if pre then
    fetched = {}
    for i = 1, n do
      fetched[i] = pre[rs[i][BAN]]
      fetched[n + i] = pre[rs[i][KEY]]
    end
  elseif n == 1 then
    fetched = redis.call('MGET', rs[1][BAN], rs[1][KEY])
  else
    local names = {}
    for i = 1, n do
      names[i] = rs[i][BAN]
      names[n + i] = rs[i][KEY]
    end
    fetched = redis.call('MGET', unpack(names))
  end

  local function evaluate(i)
    local r = rs[i]
    local c = r[CODE]
    if c == 4 then
      return log_eval(r[KEY], r[AUX], r[PER], r[AMT], r[COST])
    elseif c == 7 then
      return conc_eval(r[KEY], r[PER], r[AMT], r[COST])
    end
    return step(c, fetched[n + i] or nil, r[PER], r[AMT], r[BUR], r[COST])
  end

  -- banned keys refuse the whole batch and touch no counter
  local banned = {}
  local any_banned = false
  for i = 1, n do
    local rec = fetched[i]
    if rec then
      local untl = tonumber(string.match(rec, '^(%S+)'))
      if untl > now then
        banned[i] = untl - now
        any_banned = true
      end
    end
  end

  -- the reply is built as strings as it goes: number-to-string conversion is the costly part
  -- of a reply, so flags and "never" are literals
  local all_ok = true
  for i = 1, n do
    if any_banned and banned[i] then
      out[i] = '0 0 ' .. fmt(banned[i]) .. ' ' .. fmt(banned[i]) .. ' 1'
    else
      local ok, rem, reset, retry, new = evaluate(i)
      results[i] = {ok, reset, new}
      local head = '1 '
      if ok == 0 then
        all_ok = false
        head = '0 '
      end
      if retry == NEVER then
        out[i] = head .. rem .. ' ' .. reset .. ' -1 0'
      else
        out[i] = head .. rem .. ' ' .. reset .. ' ' .. retry .. ' 0'
      end
    end
  end

  local charged, newbans = 0, 0
  if any_banned then
    all_ok = false
  elseif all_ok and commit then
    charged = 1
    for i = 1, n do
      local r, res = rs[i], results[i]
      local c = r[CODE]
      if c == 4 then
        if r[COST] > 0 then
          local info = redis.call('HMGET', r[AUX], 'n', 'q')
          local seq = (tonumber(info[2]) or 0) + 1
          local newest = redis.call('ZRANGE', r[KEY], -1, -1, 'WITHSCORES')
          local ts = now
          if #newest > 0 and tonumber(newest[2]) > now then ts = tonumber(newest[2]) end
          redis.call('ZADD', r[KEY], fmt(ts), fmt(ts) .. ':' .. seq .. ':' .. r[COST])
          redis.call('HSET', r[AUX], 'n', fmt((tonumber(info[1]) or 0) + r[COST]), 'q', seq)
          redis.call('PEXPIRE', r[KEY], px(ts + r[PER] - now))
          redis.call('PEXPIRE', r[AUX], px(ts + r[PER] - now))
        end
      elseif c == 7 then
        redis.call('ZADD', r[KEY], fmt(now + r[PER]), r[LEASE] .. ':' .. r[COST])
        redis.call('PEXPIRE', r[KEY], px(res[2]))
      else
        redis.call('SET', r[KEY], res[3], 'PX', px(res[2]))
        if pre then pre[r[KEY]] = res[3] end
      end
    end
  end

  if commit and not any_banned and not all_ok and banargs ~= '' then
    local maxv, findw, bantime, growth, maxban, forget = string.match(
      banargs, '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
    maxv, findw, bantime = tonumber(maxv), tonumber(findw), tonumber(bantime)
    growth, maxban, forget = tonumber(growth), tonumber(maxban), tonumber(forget)
    local seen = {}
    for i = 1, n do
      local r = rs[i]
      if results[i][1] == 0 and not seen[r[BAN]] and not r[ALLOW] then
        seen[r[BAN]] = true
        local kept = {}
        local old = redis.call('GET', r[VIOL])
        if old then
          for w in string.gmatch(old, '%S+') do
            local t = tonumber(w)
            if t > now - findw then kept[#kept + 1] = t end
          end
        end
        kept[#kept + 1] = now
        while #kept > maxv do table.remove(kept, 1) end
        if #kept >= maxv then
          local offenses = 1
          local rec = redis.call('GET', r[BAN])
          if rec then
            local _, off, keep = string.match(rec, '^(%S+) (%S+) (%S+)')
            if tonumber(keep) > now then offenses = tonumber(off) + 1 end
          end
          local dur = math.floor(bantime * growth ^ (offenses - 1) + 0.5)
          if maxban >= 0 then dur = math.min(dur, maxban) end
          dur = math.max(1, dur)
          local keep = math.max(now + dur, now + forget)
          redis.call('SET', r[BAN], fmt(now + dur) .. ' ' .. offenses .. ' ' .. fmt(keep) .. ' 0',
            'PX', px(keep - now))
          redis.call('DEL', r[VIOL])
          newbans = newbans + 1
        else
          for j = 1, #kept do kept[j] = fmt(kept[j]) end
          redis.call('SET', r[VIOL], table.concat(kept, ' '), 'PX', px(findw))
        end
      end
    end
  end

  if n == 1 then
    return out[1] .. ' ' .. charged .. ' ' .. newbans
  end
  return table.concat(out, ' ') .. ' ' .. charged .. ' ' .. newbans
end

if mode ~= '2' then
  return decide(reqs)
end
-- independent mode (hit_batch): each group is decided and charged on its own, in order.
-- One MGET reads every ban record and string state first; decide() keeps it current
-- as it charges (this mode records no violations and imposes no bans).
local names = {}
for i = 1, n do
  names[2 * i - 1] = reqs[i][BAN]
  names[2 * i] = reqs[i][KEY]
end
local values = redis.call('MGET', unpack(names))
local pre = {}
for i = 1, 2 * n do pre[names[i]] = values[i] end
local parts, at = {}, 0
for size in string.gmatch(ARGV[2], '%d+') do
  local group = {}
  for j = 1, tonumber(size) do group[j] = reqs[at + j] end
  at = at + tonumber(size)
  parts[#parts + 1] = decide(group, pre)
end
return table.concat(parts, ' ')
