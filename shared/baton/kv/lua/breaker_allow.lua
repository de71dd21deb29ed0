-- breaker_allow: may one call go to a provider-qualified model now? One atomic step.
--
-- KEYS[1]   the breaker's state hash    baton:{cb:<target>}:state
-- KEYS[2]   half-open probe leases      baton:{cb:<target>}:probes  (probe id -> lease end)
-- ARGV[1]   now, from the caller's injectable clock (never Redis TIME, so tests drive it)
-- ARGV[2]   this call's probe id, kept only if the call becomes a probe
-- ARGV[3]   how many probes may be in flight at once while half-open
-- ARGV[4]   a probe lease's length in seconds
--
-- Returns {allowed 0|1, state, probe 0|1}:
--   closed                      allowed; nothing is written (the hot path costs one HGET)
--   open, cooldown running      refused
--   open, cooldown over         becomes half_open here, then as below
--   half_open                   allowed as a probe while fewer than ARGV[3] unexpired leases
--                               are held, refused otherwise
-- A lease expires on its own, so a probe whose instance died before reporting frees its
-- slot after ARGV[4] seconds instead of wedging the breaker half-open.

local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  return {1, 'closed', 0}
end
if state == 'open' then
  local cooldown_until = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
  if now < cooldown_until then
    return {0, 'open', 0}
  end
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('DEL', KEYS[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
  return {1, 'half_open', 1}
end
return {0, 'half_open', 0}
