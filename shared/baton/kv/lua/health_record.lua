-- health_record: count one live call in its minute of a model's health, in one step.
--
-- KEYS[1]   the minute's hash   baton:{cb:<target>}:health:m:<epoch minute>
-- ARGV[1]   now, from the caller's injectable clock
-- ARGV[2]   1 when the call succeeded, 0 when it failed
-- ARGV[3]   the latency's DDSketch bucket field, lat:<bucket>
-- ARGV[4]   the hash's TTL in milliseconds
--
-- Fields: calls, errors, lat:<bucket> counts and last_failure_at (the latest failure
-- whatever order instances report in). The TTL is renewed on every write: these are
-- monitoring data, which volatile-lru may evict and nothing depends on for correctness.

redis.call('HINCRBY', KEYS[1], 'calls', 1)
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
if ARGV[2] == '0' then
  redis.call('HINCRBY', KEYS[1], 'errors', 1)
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_failure_at') or '0')
  if tonumber(ARGV[1]) > last then
    redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
