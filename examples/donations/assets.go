package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The pages load the official phoenix client (Socket, Channel, Presence)
// from node_modules, as installed by `npm ci` from the repository's
// package-lock.json; nothing of it is vendored here.

// phoenixRel is where npm puts the client's ES module.
var phoenixRel = filepath.Join("node_modules", "phoenix", "priv", "static", "phoenix.mjs")

// errPhoenixMissing explains how to get the client.
var errPhoenixMissing = errors.New("the phoenix JavaScript client was not found: run `npm ci` in the repository root " +
	"(it installs node_modules/phoenix), or pass -phoenix with the path of phoenix.mjs or of a node_modules directory")

// findPhoenix returns the path of phoenix.mjs. A non-empty override is a
// file, a directory holding phoenix.mjs, a phoenix package directory, or a
// node_modules directory (or its parent). Otherwise node_modules is looked
// for in dirs and each of their parents.
func findPhoenix(override string, dirs ...string) (string, error) {
	if override != "" {
		for _, p := range []string{
			override,
			filepath.Join(override, "phoenix.mjs"),
			filepath.Join(override, "priv", "static", "phoenix.mjs"),
			filepath.Join(override, "phoenix", "priv", "static", "phoenix.mjs"),
			filepath.Join(override, phoenixRel),
		} {
			if isFile(p) {
				return p, nil
			}
		}
		return "", fmt.Errorf("-phoenix %s: no phoenix.mjs there: %w", override, errPhoenixMissing)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		d, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		for {
			if p := filepath.Join(d, phoenixRel); isFile(p) {
				return p, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", errPhoenixMissing
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// searchDirs are where node_modules is looked for: the working directory
// and the executable's directory, and their parents.
func searchDirs() []string {
	var dirs []string
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	return dirs
}

// phoenixVersion reads the version of the phoenix package that holds
// phoenix.mjs, or "".
func phoenixVersion(mjs string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(mjs), "..", "..", "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Name, Version string }
	if json.Unmarshal(b, &pkg) != nil || pkg.Name != "phoenix" {
		return ""
	}
	return pkg.Version
}

// phoenixAsset serves /assets/phoenix.mjs (and its source map) from disk.
// When the client is missing it answers 503 with a module that throws the
// explanation, which the page shows; it looks again on every request, so
// running `npm ci` while the server runs is enough.
type phoenixAsset struct {
	override string
	dirs     []string
	log      *slog.Logger

	mu   sync.Mutex
	path string
}

func newPhoenixAsset(override string, dirs []string, log *slog.Logger) *phoenixAsset {
	a := &phoenixAsset{override: override, dirs: dirs, log: log}
	if p, err := a.resolve(); err != nil {
		log.Error(err.Error())
	} else {
		log.Info("serving the phoenix client", "path", p, "version", phoenixVersion(p))
	}
	return a
}

func (a *phoenixAsset) resolve() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.path != "" && isFile(a.path) {
		return a.path, nil
	}
	p, err := findPhoenix(a.override, a.dirs...)
	a.path = p
	return p, err
}

func (a *phoenixAsset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := a.resolve()
	if err != nil {
		a.log.Error(err.Error())
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		msg, _ := json.Marshal(err.Error())
		fmt.Fprintf(w, "throw new Error(%s)\n", msg)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".map") {
		p += ".map"
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFile(w, r, p)
}
