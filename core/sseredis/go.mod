module github.com/ssekit/ssekit/core/sseredis

go 1.26

require github.com/ssekit/ssekit/core v0.0.0

replace github.com/ssekit/ssekit/core => ../
