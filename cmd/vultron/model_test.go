package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// runCapture runs the binary's dispatcher with args and returns its exit
// status and streams.
func runCapture(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := run(context.Background(), env, args)
	return code, stdout.String(), stderr.String()
}

func TestModelDesiderata(t *testing.T) {
	code, out, errOut := runCapture(t, "model", "desiderata")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// The baselines of the MPCVD measurement model, most desirable first.
	want := []string{
		"D≺P 0.0370 1/27", "F≺P 0.1111 1/9", "D≺X 0.1667 1/6", "D≺A 0.1875 3/16",
		"F≺X 0.3333 1/3", "V≺P 0.3333 1/3", "F≺A 0.3750 3/8", "P≺X 0.5000 1/2",
		"X≺A 0.5000 1/2", "P≺A 0.6667 2/3", "V≺X 0.6667 2/3", "V≺A 0.7500 3/4",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2+len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), 2+len(want), out)
	}
	for i, w := range want {
		if got := strings.Join(strings.Fields(lines[2+i]), " "); got != w {
			t.Errorf("line %d = %q, want %q", 3+i, got, w)
		}
	}

	code, out, _ = runCapture(t, "model", "desiderata", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d", code)
	}
	var rows []struct {
		Desideratum string  `json:"desideratum"`
		Frequency   float64 `json:"frequency"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(rows) != 12 || rows[0].Desideratum != "D≺P" || math.Abs(rows[0].Frequency-1.0/27) > 1e-12 ||
		rows[11].Desideratum != "V≺A" || rows[11].Frequency != 0.75 {
		t.Errorf("--json rows = %+v", rows)
	}
}

func TestModelDesiderataHistory(t *testing.T) {
	code, out, errOut := runCapture(t, "model", "desiderata", "-history", "VFDPXA")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, "history VFDPXA: 12 met, 0 missed, 0 pending; skill +1.000\n") {
		t.Errorf("assessment header wrong:\n%s", out)
	}
	code, out, _ = runCapture(t, "model", "desiderata", "-json", "-history", "P V F")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var a struct {
		History    string `json:"history"`
		Met        int    `json:"met"`
		Missed     int    `json:"missed"`
		Pending    int    `json:"pending"`
		Desiderata []struct {
			Desideratum string `json:"desideratum"`
			Status      string `json:"status"`
		} `json:"desiderata"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	// P first misses D≺P, F≺P, V≺P; V, F and P then meet V≺X, V≺A, F≺X,
	// F≺A, P≺X, P≺A; D≺X, D≺A and X≺A are still open.
	if a.History != "PVF" || a.Met != 6 || a.Missed != 3 || a.Pending != 3 || len(a.Desiderata) != 12 {
		t.Errorf("assessment = %+v", a)
	}
	code, _, errOut = runCapture(t, "model", "desiderata", "-history", "FV")
	if code != 2 || !strings.Contains(errOut, "vendor must be aware before a fix can be ready") {
		t.Errorf("invalid history: exit %d, stderr %q", code, errOut)
	}
}

func TestModelStates(t *testing.T) {
	code, out, errOut := runCapture(t, "model", "states")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"RM (report management), per participant: 7 states", "11 transitions:",
		"EM (embargo management), per case: 5 states", "10 transitions:",
		"PEC (participant embargo consent), per participant: 5 states",
		"CS (case state = VFD x PXA): 32 states, 58 single-event transitions",
		"28 message types: RS RI RV RD RA RC RK RE EP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("line %q has trailing blanks", line)
		}
	}
	code, out, _ = runCapture(t, "model", "states", "-json")
	if code != 0 {
		t.Fatalf("-json: exit %d", code)
	}
	var v struct {
		Models []struct {
			Name        string            `json:"name"`
			States      []string          `json:"states"`
			Transitions []json.RawMessage `json:"transitions"`
		} `json:"models"`
		CaseStates []json.RawMessage `json:"caseStates"`
		CaseEdges  int               `json:"caseEdges"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(v.Models) != 5 || len(v.Models[0].Transitions) != 11 || len(v.Models[1].Transitions) != 10 ||
		len(v.CaseStates) != 32 || v.CaseEdges != 58 {
		t.Errorf("JSON counts: %d models, RM %d edges, EM %d edges, %d case states, %d case edges",
			len(v.Models), len(v.Models[0].Transitions), len(v.Models[1].Transitions), len(v.CaseStates), v.CaseEdges)
	}
}

func TestModelHistories(t *testing.T) {
	code, out, _ := runCapture(t, "model", "histories", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var hs []struct {
		History     string   `json:"history"`
		Probability float64  `json:"probability"`
		Met         []string `json:"met"`
	}
	if err := json.Unmarshal([]byte(out), &hs); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	var total float64
	for _, h := range hs {
		total += h.Probability
	}
	if len(hs) != 70 || math.Abs(total-1) > 1e-9 || hs[0].History != "VFDPXA" || len(hs[0].Met) != 12 {
		t.Errorf("%d histories, total probability %v, first %+v", len(hs), total, hs[0])
	}
	code, out, _ = runCapture(t, "model", "histories")
	if code != 0 || !strings.HasPrefix(out, "70 valid histories") || strings.Count(out, "\n") != 72 {
		t.Errorf("table: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
}

func TestModelUsage(t *testing.T) {
	for _, args := range [][]string{{"model"}, {"model", "graph"}, {"model", "states", "extra"}, {"model", "histories", "-bogus"}} {
		if code, _, _ := runCapture(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	code, out, _ := runCapture(t, "help", "model")
	if code != 0 || !strings.Contains(out, "desiderata") {
		t.Errorf("help model: exit %d, output %q", code, out)
	}
}
