-- breaker_record: count one finished upstream call and make the transition it causes.
--
-- KEYS[1]   the breaker's state hash    baton:{cb:<target>}:state
-- KEYS[2]   the sliding window          baton:{cb:<target>}:health
--           (fields c:<slice> calls and f:<slice> failures; slice = floor(now / ARGV[4]))
-- KEYS[3]   half-open probe leases      baton:{cb:<target>}:probes
-- KEYS[4]   closed incidents            baton:{cb:<target>}:incidents (score: closed at)
-- ARGV[1]   now, from the caller's injectable clock
-- ARGV[2]   1 when the call succeeded, 0 when it failed
-- ARGV[3]   the call's probe id, or '' when it was not admitted as a probe
-- ARGV[4]   length of one window slice in seconds
-- ARGV[5]   slices per window
-- ARGV[6]   calls the window needs before it may open the breaker
-- ARGV[7]   failure rate (0..1] at or above which it opens
-- ARGV[8]   first cooldown in seconds
-- ARGV[9]   cooldown multiplier after a failed probe
-- ARGV[10]  longest cooldown in seconds
-- ARGV[11]  incident retention in seconds
--
-- Returns the new state on a transition ('open' or 'closed'), else nil.
--
-- closed     the call joins the window (slices older than the window are deleted here, so
--            the hash stays bounded); a failure that leaves at least ARGV[6] calls with a
--            failure rate of at least ARGV[7] opens the breaker: the incident starts, with
--            the window's failures, and the window is cleared.
-- open and half_open
--            a failure adds to the incident's failures (late calls admitted before the
--            breaker opened, failed probes). Only a probe holding its lease decides:
--            success closes (the first successful probe is enough: the incident is
--            appended, trimmed to the retention, and the window starts afresh); failure
--            re-opens with the cooldown times ARGV[9], capped at ARGV[10]. Other outcomes
--            change nothing: a late success proves little about an upstream now failing.

local now = tonumber(ARGV[1])
local success = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'

if not success then
  redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[1])
end

local function open_for(cooldown)
  redis.call('HSET', KEYS[1], 'state', 'open', 'cooldown_s', cooldown,
    'cooldown_until', now + cooldown)
  redis.call('DEL', KEYS[3])
end

if state == 'closed' then
  local slice = math.floor(now / tonumber(ARGV[4]))
  local oldest = slice - tonumber(ARGV[5]) + 1
  redis.call('HINCRBY', KEYS[2], 'c:' .. slice, 1)
  if not success then
    redis.call('HINCRBY', KEYS[2], 'f:' .. slice, 1)
  end
  local calls, failures, stale = 0, 0, {}
  local fields = redis.call('HGETALL', KEYS[2])
  for i = 1, #fields, 2 do
    local name, count = fields[i], tonumber(fields[i + 1])
    if tonumber(string.sub(name, 3)) < oldest then
      stale[#stale + 1] = name
    elseif string.sub(name, 1, 1) == 'c' then
      calls = calls + count
    else
      failures = failures + count
    end
  end
  if #stale > 0 then
    redis.call('HDEL', KEYS[2], unpack(stale))
  end
  if success or calls < tonumber(ARGV[6]) or failures < tonumber(ARGV[7]) * calls then
    return nil
  end
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[1], 'failures', failures)
  redis.call('DEL', KEYS[2])
  open_for(tonumber(ARGV[8]))
  return 'open'
end

if not success then
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
if ARGV[3] == '' or redis.call('ZREM', KEYS[3], ARGV[3]) == 0 then
  return nil
end
if not success then
  local cooldown = tonumber(redis.call('HGET', KEYS[1], 'cooldown_s') or ARGV[8])
  open_for(math.min(cooldown * tonumber(ARGV[9]), tonumber(ARGV[10])))
  return 'open'
end

local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or ARGV[1])
local incident = cjson.encode({
  opened_at = opened_at,
  closed_at = now,
  duration_s = now - opened_at,
  failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0'),
})
redis.call('ZADD', KEYS[4], now, incident)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - tonumber(ARGV[11])))
redis.call('HDEL', KEYS[1], 'opened_at', 'failures', 'cooldown_s', 'cooldown_until')
redis.call('HSET', KEYS[1], 'state', 'closed', 'last_recovery_at', ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 'closed'
