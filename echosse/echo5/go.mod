module github.com/ssekit/ssekit/echosse/echo5

go 1.26.0

require (
	github.com/labstack/echo/v5 v5.4.4
	github.com/ssekit/ssekit/core v0.1.0
)

require (
	github.com/ssekit/ssekit/internal v0.1.0
	golang.org/x/time v0.15.0 // indirect
)
