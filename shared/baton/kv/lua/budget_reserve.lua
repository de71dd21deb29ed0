-- budget_reserve: admit a request's estimated cost against a tenant's monthly budget.
--
-- KEYS[1]   the tenant's budget counter   baton:{t:<tenant>}:budget:m:<YYYY-MM>
--           (integer micro-dollars: the spend of finished requests plus the
--           reservations of the ones still running)
-- ARGV[1]   the budget in micro-dollars
-- ARGV[2]   this request's estimated cost in micro-dollars (>= 0)
--
-- Returns {1, counter after reserving} when admitted, {0, counter} when not: a spent
-- budget (counter >= budget) admits nothing, and a request whose estimate would take the
-- counter past the budget is refused. Check and reservation are one atomic step, so any
-- number of concurrent instances can overshoot the budget only by what requests already
-- admitted cost beyond their estimates. The counter has no TTL (it is not cache).

local budget = tonumber(ARGV[1])
local estimate = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= budget or used + estimate > budget then
  return {0, used}
end
return {1, redis.call('INCRBY', KEYS[1], estimate)}
