"""asyncpg through switchyard's transaction pooling.

asyncpg prepares every query as a named statement and caches it per connection, the driver
style that breaks naive transaction poolers. Usage: asyncpg_prepared.py PORT
Prints one JSON line; exits non-zero with a message on any failure.
"""

import asyncio
import json
import sys

import asyncpg


async def main(port: int) -> dict:
    opts = dict(host="127.0.0.1", port=port, user="app", password="app", database="app")
    conn = await asyncpg.connect(**opts)
    ports = set()
    for i in range(100):
        r = await conn.fetchrow(
            "SELECT $1::int + 1 AS v, inet_server_port() AS p, pg_is_in_recovery() AS rec", i
        )
        if r["v"] != i + 1 or not r["rec"]:
            raise SystemExit(f"read {i}: {dict(r)}")
        ports.add(r["p"])
    if len(ports) != 2:
        raise SystemExit(f"reads reached {sorted(ports)}, expected both replicas")
    stmt = await conn.prepare("SELECT $1::text || $2::text")
    for i in range(20):
        got = await stmt.fetchval("a", str(i))
        if got != f"a{i}":
            raise SystemExit(f"prepared statement returned {got!r}")
    await conn.execute("CREATE TABLE IF NOT EXISTS apg_t (id int, v text)")
    async with conn.transaction():
        await conn.execute("INSERT INTO apg_t VALUES ($1, $2)", 1, "x")
        n = await conn.fetchval("SELECT count(*) FROM apg_t WHERE id = 1")
        if n < 1:
            raise SystemExit("a transaction did not see its own write")
    await conn.executemany("INSERT INTO apg_t VALUES ($1, $2)", [(i, "y") for i in range(50)])
    await conn.close()

    pool = await asyncpg.create_pool(**opts, min_size=4, max_size=8)

    async def one(i: int) -> int:
        async with pool.acquire() as c:
            return await c.fetchval("SELECT $1::int * 2", i)

    results = await asyncio.gather(*(one(i) for i in range(300)))
    if results != [i * 2 for i in range(300)]:
        raise SystemExit("pooled asyncpg connections returned wrong results")
    await pool.close()
    return {"ok": True, "replica_ports": sorted(ports), "pooled_queries": len(results)}


if __name__ == "__main__":
    summary = asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), timeout=90))
    print(json.dumps(summary))
