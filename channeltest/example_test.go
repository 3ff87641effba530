package channeltest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/channeltest"
)

// Lobby is the channel the examples test.
type Lobby struct{}

func (Lobby) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	if topic == "lobby:secret" {
		return nil, plume.RefuseJoin(map[string]string{"reason": "unauthorized"})
	}
	ch.Send("after_join") // pushes are for after the join: see HandleInfo
	return map[string]any{"user": ch.Assigns["user"]}, nil
}

func (Lobby) HandleInfo(ch *plume.Channel, msg any) error {
	if msg == "after_join" {
		return ch.Push("welcome", map[string]any{"online": 1})
	}
	return nil
}

func (Lobby) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	switch event {
	case "ping":
		return plume.ReplyOK(p), nil
	case "shout":
		return plume.NoReply, ch.Broadcast("shout", p)
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

func lobbySocket() *plume.Socket {
	s := &plume.Socket{
		Connect: func(ctx context.Context, c *plume.Conn) error {
			user := c.Params.String("user")
			if user == "" {
				return plume.ErrRefused
			}
			c.ID = "user_socket:" + user
			c.Assign("user", user)
			return nil
		},
	}
	s.Channel("lobby:*", func() plume.ChannelHandler { return Lobby{} })
	return s
}

func Example() {
	runTest(func(t testing.TB) { // in a test: func TestLobby(t *testing.T) {
		ct := channeltest.New(t, lobbySocket())
		c := ct.Socket("user_socket:ann", map[string]any{"user": "ann"})

		lobby, err := c.Join("lobby:main", nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("joined:", lobby.JoinReply())

		lobby.AssertPush("welcome", map[string]any{"online": 1})

		ref := lobby.Push("ping", map[string]any{"n": 1})
		p := lobby.AssertReply(ref, "ok", map[string]any{"n": 1})
		fmt.Println("reply:", p)

		ref = lobby.Push("dance", nil)
		lobby.AssertReply(ref, "error", map[string]any{"reason": "unknown event"})
	})
	// Output:
	// joined: {"user":"ann"}
	// reply: {"n":1}
}

func ExampleClient_Join_refused() {
	runTest(func(t testing.TB) {
		ct := channeltest.New(t, lobbySocket())
		c := ct.Socket("", nil)

		_, err := c.Join("lobby:secret", nil)
		var je *channeltest.JoinError
		if errors.As(err, &je) {
			fmt.Println("refused:", je.Reply)
		}

		_, err = c.Join("nowhere", nil)
		fmt.Println(errors.Is(err, channeltest.ErrUnmatchedTopic))
	})
	// Output:
	// refused: {"reason":"unauthorized"}
	// true
}

// Wants may be predicates, the Go form of a pattern with a guard such as
// assert_push "score", %{"points" => n} when n > 10.
func ExampleChannel_AssertPush() {
	runTest(func(t testing.TB) {
		ct := channeltest.New(t, lobbySocket())
		lobby, err := ct.Socket("", nil).Join("lobby:main", nil)
		if err != nil {
			t.Fatal(err)
		}
		lobby.AssertPush("welcome")

		ctx := context.Background()
		ct.Endpoint().Broadcast(ctx, "lobby:main", "score", map[string]any{"team": "red", "points": 3})
		ct.Endpoint().Broadcast(ctx, "lobby:main", "score", map[string]any{"team": "blue", "points": 12})

		type score struct {
			Team   string `json:"team"`
			Points int    `json:"points"`
		}
		p := lobby.AssertPush("score", func(s score) bool { return s.Points > 10 })
		var s score
		p.Decode(&s)
		fmt.Println(s.Team, s.Points)

		lobby.AssertPush("score", map[string]any{"team": "red"})
		lobby.RefutePush("score")
	})
	// Output:
	// blue 12
}

func ExampleClient_SubscribeAndJoin() {
	runTest(func(t testing.TB) {
		ct := channeltest.New(t, lobbySocket())
		lobby, err := ct.Socket("", nil).SubscribeAndJoin("lobby:main", nil)
		if err != nil {
			t.Fatal(err)
		}
		lobby.Push("shout", map[string]any{"body": "hi all"})

		// The test's own subscription sees the broadcast...
		p := lobby.AssertBroadcast("shout", map[string]any{"body": "hi all"})
		fmt.Println("broadcast:", p)
		// ...and the client gets it through fastlane.
		lobby.AssertPush("shout", map[string]any{"body": "hi all"})
	})
	// Output:
	// broadcast: {"body":"hi all"}
}

func ExampleHarness_Connect() {
	runTest(func(t testing.TB) {
		ct := channeltest.New(t, lobbySocket())

		_, err := ct.Connect(plume.Params{}, plume.ConnectInfo{})
		fmt.Println("no user:", err)

		c, err := ct.Connect(plume.Params{"user": "bob"}, plume.ConnectInfo{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("id:", c.Conn().ID)

		// Disconnecting the socket id closes the connection with 1001.
		ct.Endpoint().Disconnect(context.Background(), "user_socket:bob")
		c.AssertDisconnect(plume.CloseGoingAway)
		fmt.Println("disconnected")
	})
	// Output:
	// no user: plume: connection refused
	// id: user_socket:bob
	// disconnected
}

// runTest runs body as go test would run a test function: body gets a
// stand-in for its *testing.T, and cleanups run when it returns. Failures
// are printed.
func runTest(body func(t testing.TB)) {
	t := &exampleT{}
	var cancel context.CancelFunc
	t.ctx, cancel = context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(t)
	}()
	<-done
	cancel()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// exampleT implements the part of testing.TB that examples use.
type exampleT struct {
	testing.TB
	ctx      context.Context
	cleanups []func()
}

func (t *exampleT) Helper()                      {}
func (t *exampleT) Context() context.Context     { return t.ctx }
func (t *exampleT) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Logf(format string, a ...any) {}
func (t *exampleT) Fatal(a ...any)               { fmt.Println(append([]any{"FAIL:"}, a...)...); runtime.Goexit() }
func (t *exampleT) Fatalf(format string, a ...any) {
	fmt.Println("FAIL: " + fmt.Sprintf(format, a...))
	runtime.Goexit()
}
