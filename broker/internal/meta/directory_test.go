package meta

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory id is made once, saved, and read back the same; a file
// that does not hold one is an error rather than a silently new id.
func TestLoadDirectoryID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	id, err := loadDirectoryID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id == [16]byte{} || reservedDirectoryID(id) || strings.HasPrefix(FormatDirectoryID(id), "-") {
		t.Fatalf("new id %s", FormatDirectoryID(id))
	}
	again, err := loadDirectoryID(dir)
	if err != nil || again != id {
		t.Fatalf("read back %s (%v), made %s", FormatDirectoryID(again), err, FormatDirectoryID(id))
	}
	if other, _ := loadDirectoryID(t.TempDir()); other == id {
		t.Fatal("two directories got the same id")
	}
	if p, err := ParseDirectoryID(FormatDirectoryID(id)); err != nil || p != id {
		t.Fatalf("parse %s: %s %v", FormatDirectoryID(id), FormatDirectoryID(p), err)
	}
	for _, bad := range []string{"", "not-an-id", "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ", "AAAAAAAAAAAAAAAAAAAAAAAA"} {
		if err := os.WriteFile(filepath.Join(dir, directoryIDFile), []byte(bad+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadDirectoryID(dir); err == nil {
			t.Errorf("directory.id %q read without an error", bad)
		}
	}
}

// A store reports its directory id in DescribeQuorum and registers it
// with its broker, and keeps it across a restart.
func TestStoreDirectoryID(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.RegisterBroker(ctx(t), Broker{ID: 1, Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	q, err := s.DescribeQuorum(ctx(t))
	if err != nil || len(q.Voters) != 1 {
		t.Fatalf("describe quorum: %+v %v", q, err)
	}
	id := q.Voters[0].DirectoryID
	if id == [16]byte{} || s.Cluster().Brokers[1].DirectoryID != id {
		t.Fatalf("voter directory id %s, registered %s", FormatDirectoryID(id), FormatDirectoryID(s.Cluster().Brokers[1].DirectoryID))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	q, err = s.DescribeQuorum(ctx(t))
	if err != nil || len(q.Voters) != 1 || q.Voters[0].DirectoryID != id {
		t.Fatalf("after a restart: %+v %v; want directory id %s", q, err, FormatDirectoryID(id))
	}
	if s.Cluster().Brokers[1].DirectoryID != id {
		t.Fatal("registration lost its directory id across the restart")
	}
}
