package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for _, body := range []string{"first\n", "second, longer\n", "3\n"} {
		if err := WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != body {
			t.Fatalf("read %q, want %q", got, body)
		}
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(dir, "report.html"), []byte("<p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "report.html")); info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 whatever the umask", info.Mode().Perm())
	}
	assertNoTemp(t, dir)
}

func TestWriteNewFileNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.key")
	if err := WriteNewFile(path, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	err := WriteNewFile(path, []byte("other\n"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over an existing file: %v, want fs.ErrExist", err)
	}
	// The message reads as os.OpenFile's with O_EXCL did.
	if want := "open " + path + ": file exists"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if got, _ := os.ReadFile(path); string(got) != "secret\n" {
		t.Errorf("the existing file changed: %q", got)
	}
	assertNoTemp(t, dir)
}

func TestWriteErrorsNameThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-folder", "f")
	for name, err := range map[string]error{
		"WriteFile":    WriteFile(path, nil, 0o600),
		"WriteNewFile": WriteNewFile(path, nil, 0o600),
		"SyncDir":      SyncDir(filepath.Dir(path)),
	} {
		if err == nil || !strings.Contains(err.Error(), "missing-folder") || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s in a missing folder: %v", name, err)
		}
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.Contains(de.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", de.Name())
		}
	}
}

func TestCreateFileInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "2026-01.key")
	if err := CreateFile(path, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	if err := CreateFile(path, []byte("other"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over an existing file: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "key" {
		t.Errorf("the existing file changed: %q", got)
	}
	// No other name holds the key's bytes: removing the file destroys it.
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Errorf("%d names in the folder, want the key's one", len(des))
	}
}
