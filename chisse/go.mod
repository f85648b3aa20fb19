module github.com/ssekit/ssekit/chisse

go 1.26.0

require github.com/ssekit/ssekit/core v0.0.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/ssekit/ssekit/internal v0.0.0
)

replace github.com/ssekit/ssekit/core => ../core

replace github.com/ssekit/ssekit/internal => ../internal
