// Package projects says what a project is and stores projects.
//
// A project is how a dApp reaches the gateway (/{chain}/{project}): it
// has a status, a plan with optional overrides of the plan's limits,
// optional restrictions (chains, origins, client networks, methods), and
// a secret for its own statistics view. Projects are data, not config:
// they are created, changed and removed at run time through a Store.
//
// Every Store keeps all projects in memory: Lookup, used on every call,
// is a map read. Changes made anywhere reach every Store's memory within
// a second and are announced to watchers (Watch), which is how open
// connections of a project that gets disabled can be closed.
//
// Two stores:
//
//   - BoltStore keeps projects in one file under a directory the caller
//     gives (the app passes Caddy's data directory). bbolt
//     (go.etcd.io/bbolt) is already in Caddy's module graph, is pure Go,
//     transactional (a crash never leaves half a write), a single file
//     and needs no server: right for one gateway. Its limit: the process
//     that opens the file holds a lock on it, so a second Caddy on the
//     same data directory waits, and two gateways cannot share projects
//     this way. Several gateways need the RedisStore.
//   - RedisStore keeps projects in Redis under one hash tag, so it works
//     with a single server, Sentinel or Cluster. Each write bumps a
//     version and appends to a short change log in one Lua script; every
//     instance polls the version (default every 250 ms) and applies the
//     logged changes, so all see a change within a second. If Redis is
//     down, Lookup goes on answering from memory. Projects are data: give
//     this Redis persistence (RDB or AOF); a Redis that comes back empty
//     empties every instance's memory too.
//
// A project's secret never appears in its String form, in zap logs or in
// errors; it is in its JSON, which is what the admin API returns.
package projects
