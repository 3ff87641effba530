package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/plumehq/plume/examples/donations/store"
)

//go:embed web
var webFS embed.FS

// maxBody bounds the JSON bodies the API reads.
const maxBody = 64 << 10

// Handler returns the demo's HTTP handler: the socket at /socket, the JSON
// API under /api, the pages, and their assets. phoenix serves
// /assets/phoenix.mjs.
func (a *App) Handler(phoenix http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/socket/", a.ep)
	mux.HandleFunc("POST /api/bank_transfers", a.bankTransfer)
	mux.HandleFunc("GET /api/campaigns/{id}", a.getCampaign)
	mux.HandleFunc("POST /api/disconnect", a.disconnect)
	a.mountOps(mux) // /healthz, /readyz, /metrics, /api/broadcast (ops.go)

	pages := template.Must(template.New("").Funcs(template.FuncMap{
		"money":   money,
		"percent": percent,
		"bar":     bar,
		"title":   title,
		"path":    url.PathEscape,
		"dict":    dict,
	}).ParseFS(webFS, "web/*.html"))
	mux.HandleFunc("GET /{$}", a.indexPage(pages))
	mux.HandleFunc("GET /campaigns", openCampaign)
	mux.HandleFunc("GET /campaigns/{id}", page(pages, "campaign.html", a.campaignPageData))
	mux.HandleFunc("GET /dashboard", page(pages, "dashboard.html", func(*http.Request) any { return nil }))

	static, _ := fs.Sub(webFS, "web/static")
	files := http.FileServerFS(static)
	mux.Handle("GET /assets/", http.StripPrefix("/assets", noCache(files)))
	mux.Handle("GET /assets/phoenix.mjs", phoenix)
	mux.Handle("GET /assets/phoenix.mjs.map", phoenix)
	return securityHeaders(mux)
}

// bankTransfer is POST /api/bank_transfers {campaign_id, amount, donor}: a
// donation from outside any channel, broadcast like one made on a channel
// (with source "bank_transfer"). It answers 201 with the campaign.
func (a *App) bankTransfer(w http.ResponseWriter, r *http.Request) {
	m, status, msg := readObject(w, r)
	if status != 0 {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	id, _ := m["campaign_id"].(string)
	amount, donor, ok := donationFields(m)
	if id == "" || !ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "invalid_donation"})
		return
	}
	c, err := a.donate(r.Context(), store.Donation{CampaignID: id, Amount: amount, Donor: donor, Source: sourceBankTransfer, At: a.now()})
	switch {
	case errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrOverflow):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "invalid_donation"})
		return
	case err != nil:
		a.log.Error("bank transfer not stored", "campaign", id, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "storage_error"})
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// getCampaign is GET /api/campaigns/<id>. An unknown campaign gets fresh
// figures and stays unknown.
func (a *App) getCampaign(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	c, err := a.store.Campaign(ctx, r.PathValue("id"))
	if err != nil {
		a.log.Error("get campaign", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "storage_error"})
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// disconnect is POST /api/disconnect {user_id}: every socket of that user,
// on every node, is closed (a "disconnect" broadcast on its socket id).
func (a *App) disconnect(w http.ResponseWriter, r *http.Request) {
	m, status, msg := readObject(w, r)
	if status != 0 {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	uid, ok := m["user_id"].(string)
	if !ok || uid == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "missing_user_id"})
		return
	}
	if err := a.ep.Disconnect(r.Context(), userSocketID(uid)); err != nil {
		a.log.Error("disconnect", "user_id", uid, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "broadcast_failed"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readObject reads a JSON body. A body that is not JSON is a 422
// "invalid_json"; valid JSON that is not an object reads as {} (Plug puts
// it under "_json"), and an empty body too, so the caller's field checks
// reject it.
func readObject(w http.ResponseWriter, r *http.Request) (m map[string]any, status int, msg string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, "too_large"
		}
		return nil, http.StatusBadRequest, "unreadable_body"
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return map[string]any{}, 0, ""
	}
	if !json.Valid(body) {
		return nil, http.StatusUnprocessableEntity, "invalid_json"
	}
	if m, ok := decodeObject(body); ok {
		return m, 0, ""
	}
	return map[string]any{}, 0, ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// indexPage lists the known campaigns.
func (a *App) indexPage(pages *template.Template) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		cs, err := a.store.Campaigns(ctx, 100)
		if err != nil {
			a.log.Error("index page", "err", err)
			http.Error(w, "the store is not available", http.StatusServiceUnavailable)
			return
		}
		render(w, pages, "index.html", map[string]any{"Campaigns": cs, "Suggestions": suggestions(cs)})
	}
}

// suggestions are campaign ids to offer when few are known.
func suggestions(known []store.Campaign) []string {
	have := make(map[string]bool, len(known))
	for _, c := range known {
		have[c.ID] = true
	}
	var out []string
	for _, id := range []string{"clean-water", "school-books", "animal-shelter"} {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

// openCampaign is the index page's "open a campaign" form: GET
// /campaigns?id=x redirects to /campaigns/x.
func openCampaign(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if id == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/campaigns/"+url.PathEscape(id), http.StatusSeeOther)
}

func page(pages *template.Template, name string, data func(*http.Request) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { render(w, pages, name, data(r)) }
}

func render(w http.ResponseWriter, pages *template.Template, name string, data any) {
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	io.WriteString(w, b.String())
}

// noCache makes browsers revalidate assets, so a restarted server's new
// script is picked up at once (the files are small).
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// securityHeaders sets conservative headers on every response.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/socket/") && !strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; connect-src 'self'; style-src 'self'; script-src 'self'")
		}
		h.ServeHTTP(w, r)
	})
}

// title makes a campaign id readable: "clean-water" is "Clean water".
func title(id string) string {
	t := strings.TrimSpace(strings.NewReplacer("-", " ", "_", " ").Replace(id))
	if t == "" {
		return "Untitled campaign"
	}
	r, n := utf8.DecodeRuneInString(t)
	return string(unicode.ToUpper(r)) + t[n:]
}

// dict builds a map for passing several values to a template.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m[k] = kv[i+1]
	}
	return m
}

// bar is a progress bar's value: raised, but at least 1% of the goal once
// anything is raised, so that a first donation shows.
func bar(c store.Campaign) int64 {
	if c.Raised <= 0 {
		return 0
	}
	return min(max(c.Raised, c.Goal/100), c.Goal)
}

// money formats an amount in cents as dollars, for the server-rendered
// index (the pages' script formats the live figures the same way).
func money(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	whole, frac := cents/100, cents%100
	s := groupThousands(whole)
	if frac != 0 {
		s += "." + string(rune('0'+frac/10)) + string(rune('0'+frac%10))
	}
	if neg {
		return "-$" + s
	}
	return "$" + s
}

func groupThousands(n int64) string {
	s := []byte(strconv.FormatInt(n, 10))
	var out []byte
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

// percent is raised/goal as text, for the progress bar's fallback.
func percent(c store.Campaign) string {
	if c.Goal <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(float64(c.Raised)/float64(c.Goal)*100, 'f', 2, 64) + "%"
}
