module rotary.bench/goload

go 1.25.0

require (
	github.com/gorilla/websocket v1.5.3
	golang.org/x/sys v0.44.0
)
