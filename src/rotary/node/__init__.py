"""The node: hub, client sessions, command handlers and the server-API surface.

`Node` (rotary.node.node) owns everything; `Authenticator` (rotary.node.auth) is the token
seam and `Scheduler` (rotary.node.scheduler) the timer seam.
"""
