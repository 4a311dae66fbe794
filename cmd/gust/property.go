package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// Keys of the config file, the same as wsk's ~/.wskprops so that one can
// be copied to the other.
const (
	propAPIHost   = "APIHOST"
	propAuth      = "AUTH"
	propNamespace = "NAMESPACE"
)

// defaultAPIHost is where `gust up` listens by default (OpenWhisk
// standalone's port).
const defaultAPIHost = "http://127.0.0.1:3233"

// cliSettings are the values a command runs with, after precedence.
type cliSettings struct {
	APIHost   string `json:"apihost"`
	Auth      string `json:"auth"`
	Namespace string `json:"namespace"`
	File      string `json:"configFile"` // the config file consulted
}

// configPath returns $GUST_CONFIG_FILE, else ~/.gust/config.
func configPath() (string, error) {
	if p := os.Getenv("GUST_CONFIG_FILE"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the config file: %w (set GUST_CONFIG_FILE)", err)
	}
	return filepath.Join(home, ".gust", "config"), nil
}

// readProps reads a wskprops-style file: KEY=VALUE lines, blank lines and
// # comments ignored. A missing file is an empty one.
func readProps(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	props := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // wsk skips such lines too
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props, sc.Err()
}

// writeProps replaces the file with props, sorted by key. It holds a
// credential, so the file is private to the user (0600, directory 0700),
// and it is written to a temporary file then renamed so that a crash never
// leaves half a config.
func writeProps(path string, props map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadSettings resolves each setting: flag, then environment (GUST_APIHOST,
// GUST_AUTH, GUST_NAMESPACE), then the config file, then the default.
func loadSettings(a *cliArgs) (cliSettings, error) {
	path, err := configPath()
	if err != nil {
		return cliSettings{}, err
	}
	props, err := readProps(path)
	if err != nil {
		return cliSettings{}, fmt.Errorf("read config: %w", err)
	}
	pick := func(flag, env, prop, def string) string {
		if flag != "" && a.has(flag) {
			return a.str(flag)
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		if v := props[prop]; v != "" {
			return v
		}
		return def
	}
	return cliSettings{
		APIHost:   pick("apihost", "GUST_APIHOST", propAPIHost, defaultAPIHost),
		Auth:      pick("auth", "GUST_AUTH", propAuth, ""),
		Namespace: pick("", "GUST_NAMESPACE", propNamespace, "_"),
		File:      path,
	}, nil
}

// runPropertySet writes the given settings to the config file, keeping the others.
func runPropertySet(_ context.Context, c *cliCtx) error {
	a := c.args
	if !a.has("apihost") && !a.has("auth") && !a.has("namespace") {
		return usagef("property set needs at least one of --apihost, --auth, --namespace")
	}
	path, err := configPath()
	if err != nil {
		return err
	}
	props, err := readProps(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var done []string
	for _, s := range []struct{ flag, prop, what string }{
		{"apihost", propAPIHost, "API host"},
		{"auth", propAuth, "auth key"},
		{"namespace", propNamespace, "namespace"},
	} {
		if !a.has(s.flag) {
			continue
		}
		v := strings.TrimSpace(a.str(s.flag))
		if strings.ContainsAny(v, "\r\n") {
			return usagef("--%s must be one line", s.flag)
		}
		props[s.prop] = v
		if s.flag == "auth" {
			// Keep the key out of terminal scrollback, as wsk does.
			done = append(done, "ok: gust auth key set; run 'gust property get --auth' to see it")
			continue
		}
		done = append(done, fmt.Sprintf("ok: gust %s set to %s", s.what, v))
	}
	if err := writeProps(path, props); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	for _, line := range done {
		fmt.Fprintln(c.stdout, line)
	}
	return nil
}

// runPropertyGet prints the settings in effect, or only the ones asked for.
func runPropertyGet(_ context.Context, c *cliCtx) error {
	// Here --apihost, --auth and --namespace select what to show; they are
	// not values, so only the environment and the file count.
	s, err := loadSettings(&cliArgs{})
	if err != nil {
		return err
	}
	if c.jsonOut() {
		b, _ := json.Marshal(s)
		return printJSON(c.stdout, b)
	}
	rows := [][2]string{
		{"config file", s.File}, {"apihost", s.APIHost}, {"auth", s.Auth}, {"namespace", s.Namespace},
	}
	only := map[string]bool{"apihost": c.args.bool("apihost"), "auth": c.args.bool("auth"), "namespace": c.args.bool("namespace")}
	some := only["apihost"] || only["auth"] || only["namespace"]
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	for _, r := range rows {
		if some && !only[r[0]] {
			continue
		}
		fmt.Fprintf(tw, "gust %s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
