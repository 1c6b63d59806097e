-- Metric events, exactly once per (unit, event id), folded into per-arm sufficient statistics.
-- KEYS[1] sorted set of "unit\0event id" seen, scored by the second it was first seen (so
-- ids older than the de-duplication window are removed with ZREMRANGEBYSCORE);
-- KEYS[2] hash unit -> arm (exposures);
-- KEYS[3] hash "unit\0metric" -> "num|den|cov" (the unit's running totals);
-- KEYS[4] hash "arm\0metric\0<sum field>" -> float (HINCRBYFLOAT).
-- ARGV[1]: now (seconds); then 11 per event: unit, event id, metric, kind code (0 binomial,
-- 1 count, 2 continuous, 3 ratio), value, denominator, covariate ("" = keep), cap lower, cap upper, denominator cap
-- lower, denominator cap upper ("" = none).
-- A unit contributes (y, y^2, x, x^2, x*y, d, d^2, y*d); an event adds new - old contribution.
-- Returns per event 0 (counted), 1 (duplicate) or 2 (unit not exposed: seen, not counted).
local FIELDS = {'sum', 'sum_sq', 'pre_sum', 'pre_sum_sq', 'cross_sum', 'denom_sum',
                'denom_sum_sq', 'num_denom_sum'}

local function clip(v, lo, hi)
  if lo ~= '' and v < tonumber(lo) then v = tonumber(lo) end
  if hi ~= '' and v > tonumber(hi) then v = tonumber(hi) end
  return v
end

local function contribution(code, num, den, x, lo, hi, dlo, dhi)
  local y
  if code == 0 then
    if num > 0 then y = 1 else y = 0 end
  else
    y = clip(num, lo, hi)
  end
  local d = 0
  if code == 3 then d = clip(den, dlo, dhi) end
  return {y, y * y, x, x * x, x * y, d, d * d, y * d}
end

local out, acc, order = {}, {}, {}
local now = ARGV[1]
for i = 2, #ARGV, 11 do
  local unit, eid, metric = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZADD', KEYS[1], 'NX', now, unit .. '\0' .. eid) == 0 then
    out[#out + 1] = 1
  else
    local arm = redis.call('HGET', KEYS[2], unit)
    if not arm then
      out[#out + 1] = 2
    else
      local code = tonumber(ARGV[i + 3])
      local lo, hi, dlo, dhi = ARGV[i + 7], ARGV[i + 8], ARGV[i + 9], ARGV[i + 10]
      local field = unit .. '\0' .. metric
      local num, den, x = 0, 0, 0
      local raw = redis.call('HGET', KEYS[3], field)
      if raw then
        local a, b, c = string.match(raw, '^([^|]*)|([^|]*)|([^|]*)$')
        num, den, x = tonumber(a), tonumber(b), tonumber(c)
      end
      local old = contribution(code, num, den, x, lo, hi, dlo, dhi)
      num = num + tonumber(ARGV[i + 4])
      den = den + tonumber(ARGV[i + 5])
      if ARGV[i + 6] ~= '' then x = tonumber(ARGV[i + 6]) end
      redis.call('HSET', KEYS[3], field, string.format('%.17g|%.17g|%.17g', num, den, x))
      local new = contribution(code, num, den, x, lo, hi, dlo, dhi)
      local k = arm .. '\0' .. metric
      local a = acc[k]
      if not a then
        a = {0, 0, 0, 0, 0, 0, 0, 0}
        acc[k] = a
        order[#order + 1] = k
      end
      for j = 1, 8 do a[j] = a[j] + (new[j] - old[j]) end
      out[#out + 1] = 0
    end
  end
end
for _, k in ipairs(order) do
  local a = acc[k]
  for j = 1, 8 do
    if a[j] ~= 0 then
      redis.call('HINCRBYFLOAT', KEYS[4], k .. '\0' .. FIELDS[j], string.format('%.17g', a[j]))
    end
  end
end
return out
