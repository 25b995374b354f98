package vocab

import (
	"embed"
	"io/fs"
)

// schemaFiles holds the JSON Schemas (draft 2020-12) of the Vultron
// documents. They reference each other by relative file name, so they work
// when served together from one directory (the node serves them at
// /schemas/). document.json is the entry point for a whole document;
// object.json checks any object by its type; each Vultron type, Activity
// and Actor has its own file; common.json and enums.json hold shared
// definitions.
//
//go:embed schemas/*.json
var schemaFiles embed.FS

// Schemas returns the JSON Schema files, named like "VulnerabilityCase.json",
// at the root of the returned file system.
func Schemas() fs.FS {
	sub, err := fs.Sub(schemaFiles, "schemas")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, and
		// "schemas" is valid.
		panic(err)
	}
	return sub
}

// Schema returns the schema file with the given name, such as
// "CaseParticipant.json".
func Schema(name string) ([]byte, bool) {
	b, err := fs.ReadFile(Schemas(), name)
	if err != nil {
		return nil, false
	}
	return b, true
}
