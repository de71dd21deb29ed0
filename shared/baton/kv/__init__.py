"""Redis infrastructure: the key schema, Lua scripts, clients and the steps built on them."""
