module github.com/plumehq/plume/pubsub/redis

go 1.26.0

require (
	github.com/plumehq/plume v0.0.0
	github.com/redis/rueidis v1.0.79
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/ws v1.5.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/plumehq/plume => ../..
