package broadcastapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Client calls a broadcast API. By default it signs each request, so the
// secret never leaves the process. The zero value needs URL and Secret.
type Client struct {
	// URL is the API's address, e.g. "http://127.0.0.1:4000/api/broadcast".
	URL string
	// Secret is the API's shared secret.
	Secret string
	// Bearer sends the secret as "Authorization: Bearer" instead of signing
	// the request: for clocks too far apart for the server's MaxSkew.
	Bearer bool
	// HTTPClient sends the requests; nil uses http.DefaultClient.
	HTTPClient *http.Client
}

// Error is a refusal from the API: its HTTP status and error text.
type Error struct {
	// StatusCode is the HTTP status, e.g. 401 or 422.
	StatusCode int
	// Message is the API's {"error": ...} text, or the status text.
	Message string
	// Broadcast is how many messages of a batch went out before the
	// failure (503 only).
	Broadcast int
}

func (e *Error) Error() string {
	return fmt.Sprintf("broadcastapi: HTTP %d: %s", e.StatusCode, e.Message)
}

// Broadcast sends one event to every subscriber of topic, on every node.
// The payload must encode to a JSON object; nil sends {}.
func (c *Client) Broadcast(ctx context.Context, topic, event string, payload any) error {
	_, err := c.post(ctx, Message{Topic: topic, Event: event, Payload: payload})
	return err
}

// Batch sends several messages in one request, in order. The server checks
// them all before sending any: if one is invalid, none is sent.
func (c *Client) Batch(ctx context.Context, msgs []Message) error {
	if msgs == nil {
		msgs = []Message{}
	}
	_, err := c.post(ctx, struct {
		Messages []Message `json:"messages"`
	}{msgs})
	return err
}

// post sends v and returns the number of messages the server broadcast.
func (c *Client) post(ctx context.Context, v any) (int, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("broadcastapi: encoding the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("broadcastapi: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Bearer {
		req.Header.Set("Authorization", "Bearer "+c.Secret)
	} else {
		now := time.Now().Unix()
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(now, 10))
		req.Header.Set(HeaderSignature, Sign(c.Secret, now, body))
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("broadcastapi: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Error     string `json:"error"`
		Broadcast int    `json:"broadcast"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	decodeErr := json.Unmarshal(data, &out)
	if resp.StatusCode != http.StatusOK {
		msg := out.Error
		if decodeErr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return 0, &Error{StatusCode: resp.StatusCode, Message: msg, Broadcast: out.Broadcast}
	}
	if decodeErr != nil {
		return 0, fmt.Errorf("broadcastapi: unexpected response %q: %w", data, decodeErr)
	}
	return out.Broadcast, nil
}
