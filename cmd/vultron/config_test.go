package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// settingsFlags builds a flag set shaped like the serve command's.
func settingsFlags() (*flag.FlagSet, *string, *string, *bool, *listFlag) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "")
	listen := fs.String("listen", "127.0.0.1:7001", "")
	publicURL := fs.String("public-url", "", "")
	allow := fs.Bool("allow-private-peers", false, "")
	var actors listFlag
	fs.Var(&actors, "actor", "")
	return fs, listen, publicURL, allow, &actors
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vultron.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplySettingsPrecedence(t *testing.T) {
	cfg := writeFile(t, `{"listen": "127.0.0.1:9000", "public-url": "http://file", "allow-private-peers": true, "actor": ["vendor:Organization", "bot:Service"]}`)
	env := map[string]string{"VULTRON_PUBLIC_URL": "http://env"}
	fs, listen, publicURL, allow, actors := settingsFlags()
	if err := fs.Parse([]string{"--listen", "127.0.0.1:7777"}); err != nil {
		t.Fatal(err)
	}
	if err := applySettings(fs, func(k string) string { return env[k] }, cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := *listen, "127.0.0.1:7777"; got != want {
		t.Errorf("listen = %q, want %q (command line wins)", got, want)
	}
	if got, want := *publicURL, "http://env"; got != want {
		t.Errorf("public-url = %q, want %q (environment beats file)", got, want)
	}
	if !*allow {
		t.Error("allow-private-peers not taken from the config file")
	}
	if got, want := []string(*actors), []string{"vendor:Organization", "bot:Service"}; !reflect.DeepEqual(got, want) {
		t.Errorf("actors = %v, want %v", got, want)
	}
}

func TestApplySettingsEnvironmentList(t *testing.T) {
	fs, _, _, _, actors := settingsFlags()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VULTRON_ACTOR": "vendor:Organization, finder:Person"}
	if err := applySettings(fs, func(k string) string { return env[k] }, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := []string(*actors), []string{"vendor:Organization", "finder:Person"}; !reflect.DeepEqual(got, want) {
		t.Errorf("actors = %v, want %v", got, want)
	}
}

func TestApplySettingsRefusals(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unknown key", `{"lissen": "x"}`, `unknown setting "lissen"`},
		{"not an object", `[1,2]`, "is not a JSON object of settings"},
		{"list for a single value", `{"listen": ["a", "b"]}`, `setting "listen" takes one value, not a list`},
		{"bad boolean", `{"allow-private-peers": "maybe"}`, `setting "allow-private-peers"`},
		{"nested object", `{"listen": {"host": "x"}}`, "value must be a string, number, boolean or a list of those"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, _, _, _, _ := settingsFlags()
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			err := applySettings(fs, func(string) string { return "" }, writeFile(t, tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"version"}, 0, "vultron "},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"version", "extra"}, 2, "version takes no arguments"},
		{[]string{"version", "-bogus"}, 2, "vultron version: unknown flag -bogus for version; see vultron version -h.\n"},
		{nil, 2, "usage: vultron"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out strings.Builder
			env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
			if got := run(t.Context(), env, tt.args); got != tt.wantCode {
				t.Errorf("exit code = %d, want %d; output:\n%s", got, tt.wantCode, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output %q does not contain %q", out.String(), tt.wantOut)
			}
		})
	}
}

func TestFlagsFirst(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Bool("json", false, "")
	fs.String("node", "", "")
	tests := []struct{ in, want []string }{
		{[]string{"show", "x", "--json", "--node", "http://n"}, []string{"--json", "--node", "http://n", "--", "show", "x"}},
		{[]string{"--node=http://n", "list"}, []string{"--node=http://n", "--", "list"}},
		{[]string{"list", "--", "--json"}, []string{"--", "list", "--json"}},
		{[]string{"-json"}, []string{"-json"}},
	}
	for _, tt := range tests {
		if got, err := flagsFirst(fs, tt.in); err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("flagsFirst(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// runCLI runs the command line args with no environment and returns the
// exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := run(t.Context(), env, args)
	return code, stdout.String(), stderr.String()
}

// TestFlagWithoutValue checks that a flag given last without its value is
// a bad command line of one sentence naming the flag, not a flag whose
// value is the "--" that separates the positional arguments.
func TestFlagWithoutValue(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"case", "list", "--node"}, "vultron case: --node needs a value; see vultron case -h.\n"},
		{[]string{"case", "list", "--token-file"}, "vultron case: --token-file needs a value; see vultron case -h.\n"},
		{[]string{"embargo", "propose", "X", "--days"}, "vultron embargo: --days needs a value; see vultron embargo propose -h.\n"},
		{[]string{"case", "show", "X", "-node"}, "vultron case: -node needs a value; see vultron case -h.\n"},
		{[]string{"serve", "--listen"}, "vultron serve: --listen needs a value; see vultron serve -h.\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != 2 || errOut != tt.want || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", code, out, errOut, tt.want)
			}
		})
	}
}

// TestBadFlagIsOneSentence checks that a flag the command does not have, or
// a value a flag refuses, is one sentence naming the flag and exit status
// 2, without the command's usage, while -h and --help still print it.
func TestBadFlagIsOneSentence(t *testing.T) {
	tests := []struct {
		args []string
		want string // the whole of stderr, or what its one line contains
	}{
		{[]string{"case", "list", "--nodee"}, "vultron case: unknown flag --nodee for case; see vultron case -h.\n"},
		{[]string{"serve", "--listne", "x"}, "vultron serve: unknown flag --listne for serve; see vultron serve -h.\n"},
		{[]string{"embargo", "propose", "X", "--bogus=1"}, "vultron embargo: unknown flag --bogus for embargo propose; see vultron embargo propose -h.\n"},
		{[]string{"model", "states", "-x"}, "vultron model: unknown flag -x for model states; see vultron model states -h.\n"},
		{[]string{"embargo", "propose", "X", "--days", "abc"}, `"abc" is not a whole number of days`},
		{[]string{"case", "list", "--json=maybe"}, `--json is true or false, not "maybe"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", code, out, errOut, tt.want)
			}
		})
	}
	helps := []struct {
		args []string
		want string
	}{
		{[]string{"case", "list", "-h"}, "usage: vultron case [flags] list"},
		{[]string{"serve", "--help"}, "usage: vultron serve [flags]"},
		{[]string{"embargo", "propose", "X", "-help"}, "usage: vultron embargo propose CASE [flags]"},
		{[]string{"store", "copy", "-h"}, "usage: vultron store copy --from URL --to URL"},
	}
	for _, tt := range helps {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != 0 || !strings.HasPrefix(errOut, tt.want) || !strings.Contains(errOut, "\nflags:\n") {
				t.Errorf("exit %d, stderr %q; want exit 0 and the usage %q with its flags", code, errOut, tt.want)
			}
		})
	}
	if code, out, _ := runCLI(t, "help", "case"); code != 0 || !strings.HasPrefix(out, "usage: vultron case [flags] list") {
		t.Errorf("vultron help case: exit %d, stdout %q", code, out)
	}
}

// TestUnknownCommandSuggestsTheNearest: a misspelt command (a typo, a
// plural) is a bad command line that names the command meant; a word
// near no command gets the list's pointer alone.
func TestUnknownCommandSuggestsTheNearest(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"cse", "list"}, `vultron: unknown command "cse" (did you mean "case"?); run "vultron help" for the list.` + "\n"},
		{[]string{"cases"}, `vultron: unknown command "cases" (did you mean "case"?); run "vultron help" for the list.` + "\n"},
		{[]string{"reprot", "list"}, `vultron: unknown command "reprot" (did you mean "report"?); run "vultron help" for the list.` + "\n"},
		{[]string{"help", "embrago"}, `vultron: unknown command "embrago" (did you mean "embargo"?); run "vultron help" for the list.` + "\n"},
		{[]string{"xyzzy"}, `vultron: unknown command "xyzzy"; run "vultron help" for the list.` + "\n"},
	} {
		code, out, errOut := runCLI(t, tt.args...)
		if code != 2 || out != "" || errOut != tt.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestBadSettingIsABadCommandLine: a setting of serve from the config file
// or the environment that the command line would refuse (an unknown name,
// a value that does not parse) is a bad command line as the flag is: exit
// 2, one sentence, and the data directory is not made.
func TestBadSettingIsABadCommandLine(t *testing.T) {
	for _, tt := range []struct {
		name, file, env, want string
	}{
		{"unknown key", `{"lissen": "127.0.0.1:0"}`, "", `unknown setting "lissen"`},
		{"bad value", `{"allow-private-peers": "maybe"}`, "", `setting "allow-private-peers"`},
		{"list for one value", `{"public-url": ["http://a.example", "http://b.example"]}`, "", "takes one value, not a list"},
		{"not JSON", `{"listen":`, "", "is not a JSON object of settings"},
		{"environment", `{}`, "maybe", "VULTRON_ALLOW_PRIVATE_PEERS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var out strings.Builder
			env := &environment{stdout: &out, stderr: &out, getenv: func(k string) string {
				if k == "VULTRON_ALLOW_PRIVATE_PEERS" {
					return tt.env
				}
				return ""
			}}
			code := run(t.Context(), env, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--config", writeFile(t, tt.file)})
			if code != 2 || !strings.Contains(out.String(), tt.want) || strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
				t.Errorf("exit %d, %q; want exit 2 and one sentence saying %q", code, out.String(), tt.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was made (%v)", err)
			}
		})
	}
}
