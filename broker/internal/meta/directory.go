package meta

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Directory ids (KIP-853). Every node's metadata directory has an id,
// chosen at random the first time the node starts with it and kept in
// the file directory.id beside the Raft log, in Kafka's text form (16
// bytes in URL-safe base64 without padding, as meta.properties'
// directory.id). A node registers it with its broker registration, and
// DescribeQuorum reports each voter's and observer's: a node whose disk
// was replaced comes back under the same node id with a new directory
// id, which is how an operator tells the two apart.

// directoryIDFile names the file that holds the directory id, in
// Config.Dir.
const directoryIDFile = "directory.id"

// reservedDirectoryIDs: Kafka reserves the ids whose first 15 bytes are
// zero and whose last is below 100 (unassigned, lost, migrating ...).
const reservedDirectoryIDs = 100

// loadDirectoryID reads the directory id of dir, making and saving one
// when there is none. A file that does not hold an id is an error: the
// id must not change under a node that has one.
func loadDirectoryID(dir string) ([16]byte, error) {
	var id [16]byte
	path := filepath.Join(dir, directoryIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, err = ParseDirectoryID(strings.TrimSpace(string(data)))
		if err != nil {
			return id, fmt.Errorf("meta: %s: %w", path, err)
		}
		return id, nil
	case !errors.Is(err, os.ErrNotExist):
		return id, fmt.Errorf("meta: read directory id: %w", err)
	}
	id = newDirectoryID()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return id, fmt.Errorf("meta: %w", err)
	}
	if err := writeFileSync(path, []byte(FormatDirectoryID(id)+"\n")); err != nil {
		return id, fmt.Errorf("meta: save directory id: %w", err)
	}
	return id, nil
}

// newDirectoryID chooses a random id that is not reserved and whose text
// does not start with '-' (Kafka avoids those, which look like flags on
// a command line).
func newDirectoryID() [16]byte {
	for {
		var id [16]byte
		rand.Read(id[:])
		if !reservedDirectoryID(id) && !strings.HasPrefix(FormatDirectoryID(id), "-") {
			return id
		}
	}
}

func reservedDirectoryID(id [16]byte) bool {
	for _, b := range id[:15] {
		if b != 0 {
			return false
		}
	}
	return id[15] < reservedDirectoryIDs
}

// FormatDirectoryID is a directory id as Kafka prints one.
func FormatDirectoryID(id [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// ParseDirectoryID parses a directory id printed by FormatDirectoryID.
func ParseDirectoryID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%q is not a directory id (16 bytes in URL-safe base64)", s)
	}
	copy(id[:], b)
	if reservedDirectoryID(id) {
		return id, fmt.Errorf("%q is a reserved directory id", s)
	}
	return id, nil
}

// writeFileSync writes a file whole or not at all: a temporary file,
// synced, renamed over path, and the directory synced.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
