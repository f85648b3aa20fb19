module github.com/ssekit/ssekit/e2e

go 1.26

require (
	github.com/ssekit/ssekit/core v0.0.0
	github.com/tmaxmax/go-sse v0.12.0
)

replace github.com/ssekit/ssekit/core => ../core
