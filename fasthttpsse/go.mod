module github.com/ssekit/ssekit/fasthttpsse

go 1.26.0

require (
	github.com/ssekit/ssekit/core v0.1.0
	github.com/valyala/bytebufferpool v1.0.0
	github.com/valyala/fasthttp v1.51.0
	golang.org/x/sys v0.13.0
)

require (
	github.com/andybalholm/brotli v1.0.5 // indirect
	github.com/klauspost/compress v1.17.0 // indirect
	github.com/ssekit/ssekit/internal v0.1.0
)
