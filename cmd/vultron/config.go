package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Settings of a long-running command come from three places. In order of
// precedence: the command line, the environment (VULTRON_<FLAG> with dashes
// as underscores, e.g. VULTRON_PUBLIC_URL), and a JSON config file named by
// --config whose keys are the flag names. A flag's own default applies when
// none of them sets it.

// listFlag is a repeatable flag; from the environment its values are
// comma-separated, from a config file they are a JSON array.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// envName returns the environment variable that can set flag name.
func envName(name string) string {
	return "VULTRON_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applySettings fills every flag of fs that the command line did not set
// from the environment, then from the config file at configPath (if not
// empty). It refuses unknown keys in the file so a typo is not silently
// ignored.
func applySettings(fs *flag.FlagSet, getenv func(string) string, configPath string) error {
	fromFile, err := readConfigFile(configPath)
	if err != nil {
		return err
	}
	for key := range fromFile {
		if fs.Lookup(key) == nil {
			return usageError("config file %s: unknown setting %q (settings are the flag names of the command)", configPath, key)
		}
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if firstErr != nil || onCommandLine[f.Name] || f.Name == "config" {
			return
		}
		_, repeatable := f.Value.(*listFlag)
		if v := getenv(envName(f.Name)); v != "" {
			values := []string{v}
			if repeatable {
				values = splitList(v)
			}
			for _, one := range values {
				if err := fs.Set(f.Name, one); err != nil {
					firstErr = usageError("environment variable %s: %v", envName(f.Name), err)
					return
				}
			}
			return
		}
		if values, ok := fromFile[f.Name]; ok {
			if len(values) > 1 && !repeatable {
				firstErr = usageError("config file %s: setting %q takes one value, not a list", configPath, f.Name)
				return
			}
			for _, one := range values {
				if err := fs.Set(f.Name, one); err != nil {
					firstErr = usageError("config file %s: setting %q: %v", configPath, f.Name, err)
					return
				}
			}
		}
	})
	return firstErr
}

func splitList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// readConfigFile reads a JSON object of settings. Each value is a string,
// number, boolean or an array of those; all are returned as strings in the
// form the flag package parses.
func readConfigFile(path string) (map[string][]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, usageError("config file %s is not a JSON object of settings: %v", path, err)
	}
	out := make(map[string][]string, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := raw[k].(type) {
		case []any:
			for _, item := range v {
				s, err := scalarSetting(item)
				if err != nil {
					return nil, usageError("config file %s: setting %q: %v", path, k, err)
				}
				out[k] = append(out[k], s)
			}
		default:
			s, err := scalarSetting(v)
			if err != nil {
				return nil, usageError("config file %s: setting %q: %v", path, k, err)
			}
			out[k] = []string{s}
		}
	}
	return out, nil
}

func scalarSetting(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", fmt.Errorf("value must be a string, number, boolean or a list of those")
	}
}
