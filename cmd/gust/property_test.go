package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolate points HOME at a temporary directory and clears the settings
// from the environment, so tests never read or write the user's config.
func isolate(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"GUST_CONFIG_FILE", "GUST_APIHOST", "GUST_AUTH", "GUST_NAMESPACE"} {
		t.Setenv(k, "")
	}
	return home
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPropertyRoundTrip(t *testing.T) {
	home := isolate(t)
	out, _, err := runCmd(t, "property", "set", "--apihost", "gust.example:443", "--auth", "u1:k1", "--namespace", "team")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "k1") {
		t.Errorf("property set printed the key: %q", out)
	}
	path := filepath.Join(home, ".gust", "config")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode = %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if want := "APIHOST=gust.example:443\nAUTH=u1:k1\nNAMESPACE=team\n"; string(data) != want {
		t.Errorf("config =\n%s\nwant\n%s", data, want)
	}

	// A second set changes one key and keeps the others, including keys
	// Gust does not know (a copied .wskprops).
	os.WriteFile(path, append(data, "# comment\nAPIGW_ACCESS_TOKEN=tok\n"...), 0o600)
	if _, _, err := runCmd(t, "property", "set", "-u", "u2:k2"); err != nil {
		t.Fatal(err)
	}
	props, err := readProps(path)
	if err != nil {
		t.Fatal(err)
	}
	if props[propAuth] != "u2:k2" || props[propAPIHost] != "gust.example:443" || props["APIGW_ACCESS_TOKEN"] != "tok" {
		t.Errorf("props = %v", props)
	}

	out, _, err = runCmd(t, "property", "get")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gust apihost", "gust.example:443", "u2:k2", "team", path} {
		if !strings.Contains(out, want) {
			t.Errorf("property get output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runCmd(t, "property", "get", "--auth")
	if strings.TrimSpace(out) != "gust auth  u2:k2" {
		t.Errorf("property get --auth = %q", out)
	}
	out, _, _ = runCmd(t, "property", "get", "--json")
	if !strings.Contains(out, `"apihost": "gust.example:443"`) {
		t.Errorf("property get --json = %q", out)
	}

	if _, _, err := runCmd(t, "property", "set"); err == nil {
		t.Error("property set with nothing: no error")
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "sub", "props")
	t.Setenv("GUST_CONFIG_FILE", path)
	if _, _, err := runCmd(t, "property", "set", "--apihost", "h"); err != nil {
		t.Fatal(err)
	}
	if props, err := readProps(path); err != nil || props[propAPIHost] != "h" {
		t.Errorf("props = %v, %v", props, err)
	}
}

func TestSettingsPrecedence(t *testing.T) {
	isolate(t)
	load := func(args ...string) cliSettings {
		t.Helper()
		a, err := parseCLIArgs(cliGlobalFlags, args)
		if err != nil {
			t.Fatal(err)
		}
		s, err := loadSettings(a)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := load(); s.APIHost != defaultAPIHost || s.Auth != "" || s.Namespace != "_" {
		t.Errorf("defaults = %+v", s)
	}
	if _, _, err := runCmd(t, "property", "set", "--apihost", "file-host", "--auth", "file:key", "--namespace", "filens"); err != nil {
		t.Fatal(err)
	}
	if s := load(); s.APIHost != "file-host" || s.Auth != "file:key" || s.Namespace != "filens" {
		t.Errorf("from file = %+v", s)
	}
	t.Setenv("GUST_APIHOST", "env-host")
	t.Setenv("GUST_AUTH", "env:key")
	t.Setenv("GUST_NAMESPACE", "envns")
	if s := load(); s.APIHost != "env-host" || s.Auth != "env:key" || s.Namespace != "envns" {
		t.Errorf("from env = %+v", s)
	}
	if s := load("--apihost", "flag-host", "-u", "flag:key"); s.APIHost != "flag-host" || s.Auth != "flag:key" {
		t.Errorf("from flags = %+v", s)
	}
}
