module github.com/plumehq/plume/bench/cluster

go 1.26.0

require (
	github.com/plumehq/plume v0.0.0
	github.com/plumehq/plume/pubsub/nats v0.0.0
	github.com/plumehq/plume/pubsub/redis v0.0.0
	github.com/redis/rueidis v1.0.79
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/ws v1.5.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace (
	github.com/plumehq/plume => ../..
	github.com/plumehq/plume/pubsub/nats => ../../pubsub/nats
	github.com/plumehq/plume/pubsub/redis => ../../pubsub/redis
)
