package store

import (
	"fmt"
	"strconv"
)

// bucketLabel names a bucket in a message: quoted, when its name is
// printable ASCII (the store's own bucket names, and the ids of cases and
// reports its buckets are named after), so that a log says "automation"
// rather than 6175746f6d6174696f6e; in hex otherwise, so that no byte of
// a name reaches a log as it is.
func bucketLabel(name []byte) string {
	for _, b := range name {
		if b < 0x20 || b > 0x7e {
			return fmt.Sprintf("%x", name)
		}
	}
	return strconv.Quote(string(name))
}
