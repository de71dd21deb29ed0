-- record_usage: add one request's usage to a tenant's day and month counters, atomically.
--
-- KEYS[1]   the tenant's day hash     baton:{t:<tenant>}:usage:d:<YYYY-MM-DD>
-- KEYS[2]   the tenant's month hash   baton:{t:<tenant>}:usage:m:<YYYY-MM>
-- KEYS[3]   the tenant's dirty set    baton:{t:<tenant>}:usage:dirty
-- ARGV[1]   the per-model field prefix, "m:<escaped model>:"
-- ARGV[2]   the day's period id   (d:<YYYY-MM-DD>), marked dirty
-- ARGV[3]   the month's period id (m:<YYYY-MM>), marked dirty
-- ARGV[4..] field, increment pairs (integers; a latency bucket is a field "lat:<bucket>")
--
-- Every pair is added to the totals field and to the per-model field of both hashes.
-- Nothing here sets a TTL: counters must never be evictable under volatile-lru.

local model_prefix = ARGV[1]

for i = 4, #ARGV, 2 do
  local name, increment = ARGV[i], ARGV[i + 1]
  for k = 1, 2 do
    redis.call('HINCRBY', KEYS[k], name, increment)
    redis.call('HINCRBY', KEYS[k], model_prefix .. name, increment)
  end
end

redis.call('SADD', KEYS[3], ARGV[2], ARGV[3])
