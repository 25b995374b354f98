package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/openvultron/vultron/vocab"
)

// classifyResult is one line of "vultron classify --json".
type classifyResult struct {
	File       string `json:"file"`
	Semantic   string `json:"semantic,omitempty"`
	Messages   string `json:"messages,omitempty"`
	Unresolved string `json:"unresolved,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Refused    string `json:"refused,omitempty"`
}

// runClassify parses each file as a Vultron document and prints what it
// means in the protocol: "<file>\t<semantic>", or "<file>\tREFUSED: <why>"
// for a document the node would refuse. Bare IRIs are not looked up, so an
// activity whose object is one is reported as UNKNOWN_UNRESOLVABLE_OBJECT.
func runClassify(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet("classify", "vultron classify [--json] FILE...",
		"Classify Vultron activities in JSON files by protocol semantic and formal message type.\n"+
			"Prints one line per file: the file, a tab, and the semantic, or REFUSED: and the reason\n"+
			"the document would be refused. Exits 0 when every file could be read.", env)
	asJSON := fs.Bool("json", false, "print a JSON array of {file, semantic, messages, unresolved, reason, refused}")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("classify needs at least one file")
	}
	results := make([]classifyResult, 0, fs.NArg())
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", name, err)
		}
		results = append(results, classifyData(name, data))
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		return nil
	}
	for _, r := range results {
		if r.Refused != "" {
			fmt.Fprintf(env.stdout, "%s\tREFUSED: %s\n", r.File, r.Refused)
			continue
		}
		fmt.Fprintf(env.stdout, "%s\t%s\n", r.File, r.Semantic)
	}
	return nil
}

func classifyData(name string, data []byte) classifyResult {
	doc, err := vocab.Parse(data)
	if err != nil {
		return classifyResult{File: name, Refused: err.Error()}
	}
	c := vocab.ClassifyDocument(doc, nil)
	return classifyResult{
		File:       name,
		Semantic:   string(c.Semantic),
		Messages:   c.FormalMessages(),
		Unresolved: c.UnresolvedID,
		Reason:     c.Reason,
	}
}
