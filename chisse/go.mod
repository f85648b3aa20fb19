module github.com/ssekit/ssekit/chisse

go 1.26.0

require github.com/ssekit/ssekit/core v0.1.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/ssekit/ssekit/internal v0.1.0
)
