package node

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/openvultron/vultron/internal/samefile"
)

// tokenFile is the name, inside the data directory, of the file that holds
// the node's API token.
const tokenFile = "api-token"

// loadOrCreateToken returns the node's API token from dir/api-token,
// creating a new random token (256 bits, base64url) on first start. The
// file is written with mode 0600 through a temporary file and a rename, so
// a crash never leaves a half-written token. created reports whether the
// token is new: the caller prints a new token once.
func loadOrCreateToken(dir string) (token string, created bool, err error) {
	return loadOrCreateSecret(filepath.Join(dir, tokenFile), "api token")
}

// metricsTokenFile is the default name, inside the data directory, of the
// file that holds the node's metrics token.
const metricsTokenFile = "metrics-token"

// loadMetricsToken returns the checker of the node's metrics token, read
// from cfg.MetricsTokenFile (default DataDir/metrics-token) or created
// there on first start, when the node announces the file (not the token:
// a scraper reads it from the file). A metrics token equal to the API
// token apiToken is refused: it would not be read-only.
func loadMetricsToken(cfg Config, apiToken string) (tokenChecker, error) {
	path := cfg.MetricsTokenFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, metricsTokenFile)
	}
	token, created, err := loadOrCreateSecret(path, "metrics token")
	if err != nil {
		return tokenChecker{}, err
	}
	if err := metricsIsAPIToken(path, token, cfg.DataDir, apiToken); err != nil {
		return tokenChecker{}, err
	}
	if created {
		fmt.Fprintf(cfg.Notice, "Metrics token created in %s: it reads GET /metrics and nothing else\n", path)
	}
	return newTokenChecker(token), nil
}

// checkMetricsTokenFile refuses, before New creates anything, a metrics
// token file that holds the API token of an existing data directory.
func checkMetricsTokenFile(cfg Config) error {
	path := cfg.MetricsTokenFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, metricsTokenFile)
	}
	metrics, errM := os.ReadFile(path)
	api, errA := os.ReadFile(filepath.Join(cfg.DataDir, tokenFile))
	if errM != nil || errA != nil {
		return nil // one is still to be made, or loading it says what is wrong
	}
	return metricsIsAPIToken(path, strings.TrimSpace(string(metrics)), cfg.DataDir, strings.TrimSpace(string(api)))
}

// metricsIsAPIToken refuses the metrics token read from path when it is
// apiToken, the API token of dataDir: the metrics token reads GET
// /metrics only, and the API token does everything.
func metricsIsAPIToken(path, token, dataDir, apiToken string) error {
	if subtle.ConstantTimeCompare([]byte(token), []byte(apiToken)) != 1 {
		return nil
	}
	apiPath := filepath.Join(dataDir, tokenFile)
	if samefile.Is(path, apiPath) {
		return metricsInAPITokenFile(path, dataDir)
	}
	return fmt.Errorf("metrics token file %s holds a copy of the API token, which does everything; the metrics token must be one of its own, which reads GET /metrics and nothing else: remove this copy (the API token stays in %s) for the node to make one there, or point --metrics-token-file at another file", path, apiPath)
}

// metricsInAPITokenFile is the refusal of a metrics token file path that
// is the API token file of dataDir. It must not suggest deleting the
// file: the node would make a new API token and revoke the admin's.
func metricsInAPITokenFile(path, dataDir string) error {
	return fmt.Errorf("the metrics token file %s is the API token file; point --metrics-token-file at another file (or leave it out for %s): the metrics token must be one of its own, which reads GET /metrics and nothing else",
		path, filepath.Join(dataDir, metricsTokenFile))
}

// loadOrCreateSecret returns the secret in the file at path, creating it as
// loadOrCreateToken does; what names the secret in errors.
func loadOrCreateSecret(path, what string) (token string, created bool, err error) {
	dir := filepath.Dir(path)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		info, statErr := os.Stat(path)
		if statErr != nil {
			return "", false, fmt.Errorf("%s: %w", what, statErr)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s file %s can be read by other users (mode %v); run chmod 600 %s", what, path, info.Mode().Perm(), path)
		}
		token = strings.TrimSpace(string(data))
		if len(token) < 32 {
			return "", false, fmt.Errorf("%s file %s holds %d characters; it needs at least 32 (delete the file to make a new one)", what, path, len(token))
		}
		return token, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("%s: %w", what, err)
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, fmt.Errorf("%s: generate: %w", what, err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tmp.WriteString(token + "\n"); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("%s: write: %w", what, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("%s: sync: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	if err := syncDir(dir); err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	return token, true, nil
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tokenChecker compares bearer tokens with the node's API token in constant
// time. It keeps only a hash of the token.
type tokenChecker struct {
	sum [sha256.Size]byte
}

func newTokenChecker(token string) tokenChecker {
	return tokenChecker{sum: sha256.Sum256([]byte(token))}
}

// bearer returns the token of an "Authorization: Bearer <token>" header, or
// "" when there is none.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(h[len(prefix):])
}

// matches reports whether s is the node's API token.
func (c tokenChecker) matches(s string) bool {
	sum := sha256.Sum256([]byte(strings.TrimSpace(s)))
	return s != "" && subtle.ConstantTimeCompare(sum[:], c.sum[:]) == 1
}

// check reports whether r carries the node's API token.
func (c tokenChecker) check(r *http.Request) bool { return c.matches(bearer(r)) }
