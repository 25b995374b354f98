package vocab

// PublicCollection is the ActivityStreams special collection that addresses
// everyone.
const PublicCollection = "https://www.w3.org/ns/activitystreams#Public"

// IsPublic reports whether id addresses the Public collection, in its full
// form or one of the compacted forms peers send ("as:Public", "Public").
func IsPublic(id string) bool {
	switch id {
	case PublicCollection, "as:Public", "Public":
		return true
	}
	return false
}
