"""The node: hub, client sessions, command handlers and the server-API surface.

`Node` (rotary.node.node) owns everything; `Authenticator` (rotary.node.auth) is the token
seam and `Scheduler` (rotary.node.scheduler) the timer seam.

Layers. The modules of this package depend on each other one way only, bottom to top; a
module imports (at run time, inside a function, or under ``TYPE_CHECKING``) only modules
of a lower level than its own. Going up is done by what the caller hands down: the session
passes itself to the handlers, the node passes callables to the hub and the cluster.
tests/node/test_layers.py reads the list below and holds every import of the package to it;
a new module gets a line here before it can be imported.

    1. state, scheduler, outbox, subscription, auth, ratelimit, map_delta
    2. proxy, delta, cluster, emulation, maps, shared_poll
    3. hub
    4. contracts
    5. ending, map_flows, tags, poll_publish
    6. revocation, single_connection, map_publish
    7. subscribe, commands
    8. map_subscribe, poll_commands, connect, position
    9. control
    10. client
    11. node

Levels 1 to 3 are the session and channel state (tokens, timers, the outbox, delivery);
level 4 the contracts (`typing.Protocol`s) through which lower modules see a session and its
node; level 5 the operations every handler shares (ending a subscription, the map flows in
progress); levels 6 to 9 the per-command handlers and the server-side actions built on them;
`client` dispatches commands to the handlers; `node` ties it all together.
"""
