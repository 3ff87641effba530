package token_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/plumehq/plume/token"
)

// The secret key base is the application's secret_key_base (at least 20
// bytes); the salt names the token's purpose.
const secretKeyBase = "plume-test-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"

func ExampleSign() {
	// Phoenix.Token.sign(endpoint, "user socket", 42, signed_at: 1700000000)
	// returns the same token.
	tok, err := token.Sign(secretKeyBase, "user socket", 42, token.SignOptions{
		SignedAt: time.Unix(1700000000, 0),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(tok)
	// Output: SFMyNTY.g2gDYSpuBgAAaOXPiwFiAAFRgA.avXR6pNzIBQ2fAQeJ58rTYnv4ijOsHRzhwU3oyrPoWw
}

func ExampleVerify() {
	// A token signed by a Phoenix app:
	// Phoenix.Token.sign(endpoint, "user socket", %{"id" => 7, "role" => "admin"},
	//   signed_at: 1700000000, max_age: 3600)
	const tok = "SFMyNTY.g2gDdAAAAAJtAAAAAmlkYQdtAAAABHJvbGVtAAAABWFkbWlubgYAAGjlz4sBYgAADhA.sUiAmm0KSpExy9GmqF42rhuSbTwr2QwxvmwJY2IS5NQ"
	signedAt := time.Unix(1700000000, 0)

	data, err := token.Verify(secretKeyBase, "user socket", tok, token.VerifyOptions{
		Now: func() time.Time { return signedAt.Add(10 * time.Minute) },
	})
	if err != nil {
		panic(err)
	}
	user := data.(map[string]any)
	fmt.Println(user["id"], user["role"])

	// Two hours after signing, the max_age of one hour stored in the token
	// has passed.
	_, err = token.Verify(secretKeyBase, "user socket", tok, token.VerifyOptions{
		Now: func() time.Time { return signedAt.Add(2 * time.Hour) },
	})
	fmt.Println(errors.Is(err, token.ErrExpired))

	// A max age given to Verify replaces the stored one.
	_, err = token.Verify(secretKeyBase, "user socket", tok, token.VerifyOptions{
		MaxAge: 24 * time.Hour,
		Now:    func() time.Time { return signedAt.Add(2 * time.Hour) },
	})
	fmt.Println(err)

	_, err = token.Verify(secretKeyBase, "other salt", tok, token.VerifyOptions{})
	fmt.Println(errors.Is(err, token.ErrInvalid))
	// Output:
	// 7 admin
	// true
	// <nil>
	// true
}

func ExampleSign_json() {
	type session struct {
		UserID int      `json:"user_id"`
		Scopes []string `json:"scopes"`
	}
	tok, err := token.Sign(secretKeyBase, "api", session{UserID: 7, Scopes: []string{"read"}}, token.SignOptions{
		Format: token.FormatJSON,
		MaxAge: 15 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	data, err := token.Verify(secretKeyBase, "api", tok, token.VerifyOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v\n", data)
	// Output: map[scopes:[read] user_id:7]
}

func ExampleDecodeTerm() {
	// :erlang.term_to_binary({:ok, [1, "two", :three]})
	v, err := token.DecodeTerm([]byte{
		131, 104, 2, 100, 0, 2, 'o', 'k',
		108, 0, 0, 0, 3, 97, 1, 109, 0, 0, 0, 3, 't', 'w', 'o', 100, 0, 5, 't', 'h', 'r', 'e', 'e', 106,
	})
	if err != nil {
		panic(err)
	}
	t := v.(token.Tuple)
	fmt.Printf("%#v\n", t)
	fmt.Println(t[0] == token.Atom("ok"), t[1].([]any)[1] == "two")
	// Output:
	// token.Tuple{"ok", []interface {}{1, "two", "three"}}
	// true true
}
