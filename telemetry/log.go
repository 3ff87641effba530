package telemetry

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
)

// LogOptions configures the Phoenix-style logger.
type LogOptions struct {
	// Logger writes the lines; nil uses slog.Default().
	Logger *slog.Logger
	// Levels sets the level per kind; kinds absent use DefaultLevels, and a
	// level above slog.LevelError+4 (see Off) silences a kind.
	Levels map[Kind]slog.Level
	// FilterParams lists parameter names whose values are replaced by
	// "[FILTERED]"; "password" and "token" are always filtered, as in
	// Phoenix 1.8. Matching is by substring, case-insensitive.
	FilterParams []string
}

// Off is a level that silences a kind.
const Off = slog.Level(100)

// DefaultLevels mirrors Phoenix: connects and joins at info, handled
// messages at debug, trouble at warn or error.
var DefaultLevels = map[Kind]slog.Level{
	SocketConnected:   slog.LevelInfo,
	SocketRefused:     slog.LevelInfo,
	SocketClosed:      slog.LevelDebug,
	ChannelJoined:     slog.LevelInfo,
	ChannelRefused:    slog.LevelInfo,
	ChannelLeft:       slog.LevelDebug,
	ChannelTerminated: slog.LevelDebug,
	MessageIn:         slog.LevelDebug,
	Push:              Off,
	Broadcast:         Off,
	SlowClient:        slog.LevelWarn,
	QueueHighWater:    slog.LevelDebug,
	PubSubError:       slog.LevelError,
	PresenceJoin:      Off,
	PresenceLeave:     Off,
	Drain:             slog.LevelInfo,
}

// Logger is a Handler that writes the log lines a Phoenix user knows:
// "CONNECTED TO socket", "REFUSED CONNECTION TO socket", "JOINED room:1",
// "REFUSED JOIN room:1", "HANDLED new_msg INCOMING ON room:1".
type Logger struct {
	log    *slog.Logger
	levels map[Kind]slog.Level
	filter []string
}

// NewLogger returns a Logger.
func NewLogger(opts LogOptions) *Logger {
	l := &Logger{log: opts.Logger, levels: map[Kind]slog.Level{}}
	if l.log == nil {
		l.log = slog.Default()
	}
	for k, v := range DefaultLevels {
		l.levels[k] = v
	}
	for k, v := range opts.Levels {
		l.levels[k] = v
	}
	l.filter = []string{"password", "token"}
	for _, f := range opts.FilterParams {
		l.filter = append(l.filter, strings.ToLower(f))
	}
	return l
}

// HandleEvent logs e if its kind is enabled.
func (l *Logger) HandleEvent(e *Event) {
	level, ok := l.levels[e.Kind]
	if !ok || level >= Off {
		return
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	var msg string
	attrs := make([]slog.Attr, 0, 6)
	switch e.Kind {
	case SocketConnected:
		msg = "CONNECTED TO socket"
		attrs = append(attrs, slog.String("transport", e.Transport), slog.String("id", e.SocketID), slog.Any("params", l.Filter(e.Params)), slog.Duration("duration", e.Duration))
	case SocketRefused:
		msg = "REFUSED CONNECTION TO socket"
		attrs = append(attrs, slog.String("transport", e.Transport), slog.String("reason", e.Reason), slog.Any("params", l.Filter(e.Params)))
	case SocketClosed:
		msg = "CLOSED socket"
		attrs = append(attrs, slog.String("transport", e.Transport), slog.String("id", e.SocketID), slog.Int("code", e.Code), slog.Duration("lifetime", e.Duration))
	case ChannelJoined:
		msg = "JOINED " + e.Topic
		attrs = append(attrs, slog.Any("params", l.Filter(e.Params)), slog.Duration("duration", e.Duration))
	case ChannelRefused:
		msg = "REFUSED JOIN " + e.Topic
		attrs = append(attrs, slog.String("reason", e.Reason), slog.Any("params", l.Filter(e.Params)))
	case ChannelLeft:
		msg = "LEFT " + e.Topic
	case ChannelTerminated:
		msg = "TERMINATED " + e.Topic
		attrs = append(attrs, slog.String("reason", e.Reason))
	case MessageIn:
		msg = "HANDLED " + e.EventName + " INCOMING ON " + e.Topic
		attrs = append(attrs, slog.Any("params", l.Filter(e.Params)), slog.Duration("duration", e.Duration))
	case SlowClient:
		msg = "CLOSED slow client: outbound queue full"
		attrs = append(attrs, slog.String("id", e.SocketID), slog.Int("queue_bytes", e.QueueBytes))
	case PubSubError:
		msg = "PUBSUB " + e.Reason + " failed"
		attrs = append(attrs, slog.Any("err", e.Err))
	case Drain:
		msg = "DRAINING connections"
		attrs = append(attrs, slog.Int("count", e.Count))
	default:
		msg = e.Kind.String()
		attrs = append(attrs, slog.String("topic", e.Topic), slog.String("event", e.EventName))
	}
	// Phoenix skips channel logging for its own "phoenix" topic.
	if e.Topic == "phoenix" {
		return
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
}

// Filter returns params with sensitive values replaced by "[FILTERED]".
// JSON text is decoded first; other values pass through as they are.
func (l *Logger) Filter(params any) any {
	switch p := params.(type) {
	case nil:
		return nil
	case []byte:
		var v any
		if json.Unmarshal(p, &v) != nil {
			return "[UNPARSABLE]"
		}
		return l.filterValue(v)
	case json.RawMessage:
		return l.Filter([]byte(p))
	case map[string]any:
		return l.filterValue(p)
	}
	// Unknown shapes are not logged, since they cannot be filtered.
	return "[NOT LOGGED]"
}

func (l *Logger) filterValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if l.sensitive(k) {
				out[k] = "[FILTERED]"
			} else {
				out[k] = l.filterValue(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = l.filterValue(val)
		}
		return out
	}
	return v
}

func (l *Logger) sensitive(key string) bool {
	key = strings.ToLower(key)
	for _, f := range l.filter {
		if strings.Contains(key, f) {
			return true
		}
	}
	return false
}
