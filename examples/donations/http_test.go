package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/internal/leakcheck"
)

// The HTTP API and pages, in process. The end-to-end test runs the same
// requests against the built binary.

func newHTTP(t *testing.T) (*App, http.Handler) {
	t.Helper()
	st := memStore(t)
	ep := plume.NewEndpoint(plume.Options{})
	app := NewApp(ep, st, testToken)
	ep.Mount("/socket", app.Socket())
	t.Cleanup(func() { app.Close() })
	return app, app.Handler(newPhoenixAsset("", []string{"."}, ep.Logger()))
}

func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func wantResponse(t *testing.T, w *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if w.Code != status || strings.TrimSpace(w.Body.String()) != body {
		t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, status, body)
	}
	if body != "" && w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", w.Header().Get("Content-Type"))
	}
}

func TestBankTransfers(t *testing.T) {
	leakcheck.Check(t)
	app, h := newHTTP(t)

	w := do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"x","amount":1000,"donor":"Carol"}`)
	wantResponse(t, w, 201, `{"donors":1,"goal":100000000,"id":"x","raised":1000}`)
	w = do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"x","amount":5,"donor":"Dan","extra":true}`)
	wantResponse(t, w, 201, `{"donors":2,"goal":100000000,"id":"x","raised":1005}`)

	for _, body := range []string{
		`{"campaign_id":"x","amount":0,"donor":"Carol"}`,
		`{"campaign_id":"x","amount":-1,"donor":"Carol"}`,
		`{"campaign_id":"x","amount":1.5,"donor":"Carol"}`,
		`{"campaign_id":"x","amount":"5","donor":"Carol"}`,
		`{"campaign_id":"x","amount":5,"donor":""}`,
		`{"campaign_id":"x","amount":5,"donor":"` + strings.Repeat("z", 101) + `"}`,
		`{"campaign_id":"","amount":5,"donor":"Carol"}`,
		`{"campaign_id":7,"amount":5,"donor":"Carol"}`,
		`{"amount":5,"donor":"Carol"}`,
		`[1,2]`,
		`"x"`,
		`null`,
		``,
	} {
		wantResponse(t, do(t, h, "POST", "/api/bank_transfers", body), 422, `{"error":"invalid_donation"}`)
	}
	for _, body := range []string{`not json`, `{"campaign_id":"x"`, `{"a":1} {"b":2}`} {
		wantResponse(t, do(t, h, "POST", "/api/bank_transfers", body), 422, `{"error":"invalid_json"}`)
	}
	wantResponse(t, do(t, h, "POST", "/api/bank_transfers", `{"donor":"`+strings.Repeat("a", 70000)+`"}`), 413, `{"error":"too_large"}`)
	if w := do(t, h, "GET", "/api/bank_transfers", ""); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET bank_transfers: %d", w.Code)
	}
	wantFigures(t, app.store, store.Campaign{ID: "x", Goal: store.DefaultGoal, Raised: 1005, Donors: 2})
}

func TestBankTransferBroadcasts(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	h := app.Handler(http.NotFoundHandler())
	dash := ct.Subscribe(dashboardTopic)
	x := joinCampaign(t, ct.Socket("", nil), "x", nil)
	x.AssertPush("campaign_data")

	w := do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"x","amount":1000,"donor":"Carol"}`)
	wantResponse(t, w, 201, `{"donors":1,"goal":100000000,"id":"x","raised":1000}`)
	x.AssertPush("donation_received", map[string]any{"amount": 1000, "donor": "Carol", "source": "bank_transfer"}, withTimestamp)
	dash.AssertBroadcast("new_donation", map[string]any{"campaign_id": "x", "amount": 1000, "donor": "Carol"}, withTimestamp,
		func(m map[string]any) bool { _, has := m["source"]; return !has })

	wantResponse(t, do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"x","amount":0,"donor":"Carol"}`), 422, `{"error":"invalid_donation"}`)
	x.RefutePush("donation_received")
}

func TestGetCampaign(t *testing.T) {
	leakcheck.Check(t)
	app, h := newHTTP(t)
	wantResponse(t, do(t, h, "GET", "/api/campaigns/never-seen", ""), 200, `{"donors":0,"goal":100000000,"id":"never-seen","raised":0}`)
	if tot, _ := app.store.Totals(t.Context()); tot.Campaigns != 0 {
		t.Fatal("GET created the campaign")
	}
	do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"a b/c","amount":3,"donor":"Ann"}`)
	wantResponse(t, do(t, h, "GET", "/api/campaigns/a%20b%2Fc", ""), 200, `{"donors":1,"goal":100000000,"id":"a b/c","raised":3}`)
}

func TestDisconnectAPI(t *testing.T) {
	leakcheck.Check(t)
	app, ct := newHarness(t, nil)
	h := app.Handler(http.NotFoundHandler())
	c1, err := ct.Connect(plume.Params{"user_id": "u1"}, plume.ConnectInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ct.Connect(plume.Params{"user_id": "u2"}, plume.ConnectInfo{})
	if err != nil {
		t.Fatal(err)
	}
	w := do(t, h, "POST", "/api/disconnect", `{"user_id":"u1"}`)
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("disconnect: %d %q", w.Code, w.Body)
	}
	c1.AssertDisconnect(plume.CloseGoingAway)
	if _, err := c2.Join("campaign:still-here", nil); err != nil {
		t.Fatalf("u2 was disconnected too: %v", err)
	}
	for _, body := range []string{`{}`, `{"user_id":""}`, `{"user_id":5}`, `[]`, ``} {
		wantResponse(t, do(t, h, "POST", "/api/disconnect", body), 422, `{"error":"missing_user_id"}`)
	}
	wantResponse(t, do(t, h, "POST", "/api/disconnect", `nope`), 422, `{"error":"invalid_json"}`)
}

func TestPages(t *testing.T) {
	leakcheck.Check(t)
	_, h := newHTTP(t)
	w := do(t, h, "GET", "/", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "No campaigns yet") || !strings.Contains(w.Body.String(), `href="/campaigns/clean-water"`) {
		t.Fatalf("index: %d %s", w.Code, w.Body)
	}
	do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"school-books","amount":2550,"donor":"Ann"}`)
	do(t, h, "POST", "/api/bank_transfers", `{"campaign_id":"<script>x","amount":1,"donor":"Ann"}`)
	body := do(t, h, "GET", "/", "").Body.String()
	for _, want := range []string{`href="/campaigns/school-books"`, "School books", "$25.50", "1 donor", "&lt;script&gt;x", `href="/campaigns/%3Cscript%3Ex"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("index lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `href="/campaigns/school-books">school-books`) {
		t.Fatal("a known campaign is still suggested")
	}

	w = do(t, h, "GET", "/campaigns/clean-water", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `data-campaign="clean-water"`) || !strings.Contains(w.Body.String(), "<h1 id=\"title\">Clean water</h1>") {
		t.Fatalf("campaign page: %d %s", w.Code, w.Body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	if w := do(t, h, "GET", "/campaigns?id=+a%2Fb+", ""); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/campaigns/a%2Fb" {
		t.Fatalf("open: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := do(t, h, "GET", "/dashboard", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `data-page="dashboard"`) {
		t.Fatalf("dashboard: %d", w.Code)
	}
	for path, ctype := range map[string]string{"/assets/app.js": "text/javascript", "/assets/style.css": "text/css"} {
		w := do(t, h, "GET", path, "")
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) {
			t.Fatalf("%s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := do(t, h, "GET", "/nope", ""); w.Code != 404 {
		t.Fatalf("/nope: %d", w.Code)
	}
	if w := do(t, h, "GET", "/healthz", ""); w.Code != 200 {
		t.Fatalf("/healthz: %d", w.Code)
	}
}

func TestMoney(t *testing.T) {
	for c, want := range map[int64]string{0: "$0", 5: "$0.05", 2550: "$25.50", 100000000: "$1,000,000", 123456789: "$1,234,567.89", -100: "-$1"} {
		if got := money(c); got != want {
			t.Errorf("money(%d) = %q, want %q", c, got, want)
		}
	}
	for id, want := range map[string]string{"clean-water": "Clean water", "x": "X", "": "Untitled campaign", "élan_vital": "Élan vital"} {
		if got := title(id); got != want {
			t.Errorf("title(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestFindPhoenix(t *testing.T) {
	root := t.TempDir()
	mjs := filepath.Join(root, "node_modules", "phoenix", "priv", "static", "phoenix.mjs")
	if err := os.MkdirAll(filepath.Dir(mjs), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(mjs, []byte("export class Socket {}\n"), 0o644)
	os.WriteFile(filepath.Join(root, "node_modules", "phoenix", "package.json"), []byte(`{"name":"phoenix","version":"1.8.16"}`), 0o644)
	deep := filepath.Join(root, "examples", "donations")
	os.MkdirAll(deep, 0o755)

	// Found from a directory below the one holding node_modules.
	if got, err := findPhoenix("", t.TempDir(), deep); err != nil || got != mjs {
		t.Fatalf("findPhoenix = %q, %v", got, err)
	}
	if v := phoenixVersion(mjs); v != "1.8.16" {
		t.Fatalf("version %q", v)
	}
	// Overrides: the file, the package, node_modules, or its parent.
	for _, o := range []string{mjs, filepath.Join(root, "node_modules", "phoenix"), filepath.Join(root, "node_modules"), root} {
		if got, err := findPhoenix(o); err != nil || got != mjs {
			t.Fatalf("findPhoenix(%q) = %q, %v", o, got, err)
		}
	}
	if _, err := findPhoenix(deep); err == nil {
		t.Fatal("an override without phoenix.mjs was accepted")
	}
	if _, err := findPhoenix("", t.TempDir()); err == nil || !strings.Contains(err.Error(), "npm ci") {
		t.Fatalf("missing client: %v", err)
	}

	// Served from disk; when missing, a module that throws the explanation.
	a := newPhoenixAsset("", []string{deep}, plume.NewEndpoint(plume.Options{}).Logger())
	w := do(t, a, "GET", "/assets/phoenix.mjs", "")
	if w.Code != 200 || w.Body.String() != "export class Socket {}\n" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("phoenix.mjs: %d %q %q", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
	os.Remove(mjs)
	w = do(t, a, "GET", "/assets/phoenix.mjs", "")
	if w.Code != 503 || !strings.HasPrefix(w.Body.String(), "throw new Error(") || !strings.Contains(w.Body.String(), "npm ci") {
		t.Fatalf("missing phoenix.mjs: %d %q", w.Code, w.Body)
	}
}

func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var out bytes.Buffer
	cfg, err := parseFlags(nil, env(nil), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := config{Addr: "127.0.0.1:4000", DB: "donations.db", AdminToken: "admin_secret", DefaultToken: true, Refresh: time.Minute, PresenceDown: 30 * time.Second}
	if cfg != want {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg, _ = parseFlags(nil, env(map[string]string{"ADMIN_TOKEN": "from-env"}), &out)
	if cfg.AdminToken != "from-env" || cfg.DefaultToken {
		t.Fatalf("env token %+v", cfg)
	}
	cfg, _ = parseFlags([]string{"-admin-token", "admin_secret", "-db", ":memory:", "-addr", "127.0.0.1:0", "-refresh", "250ms", "-phoenix", "/x"}, env(map[string]string{"ADMIN_TOKEN": "from-env"}), &out)
	if cfg.AdminToken != "admin_secret" || cfg.DefaultToken || cfg.DB != ":memory:" || cfg.Addr != "127.0.0.1:0" || cfg.Refresh != 250*time.Millisecond || cfg.Phoenix != "/x" {
		t.Fatalf("flags %+v", cfg)
	}
	for _, args := range [][]string{{"-refresh", "0s"}, {"-admin-token", ""}, {"extra"}, {"-nope"}} {
		if _, err := parseFlags(args, env(nil), io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}
