module github.com/ssekit/ssekit/internal

go 1.26.0

require github.com/ssekit/ssekit/core v0.1.0
