module github.com/ssekit/ssekit/tools

go 1.26
