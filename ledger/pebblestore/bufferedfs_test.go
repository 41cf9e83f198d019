package pebblestore

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestBufferedFileWrites: a table file written in small pieces reads back
// whole, its size is right whenever asked, and nothing is left in the
// buffer after Sync or Close; other files are not buffered at all.
func TestBufferedFileWrites(t *testing.T) {
	mem := vfs.NewMem()
	fs := bufferedFS{mem}
	f, err := fs.Create("000001.sst", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(*bufferedFile); !ok {
		t.Fatalf("a table file is a %T, want *bufferedFile", f)
	}
	var want bytes.Buffer
	piece := bytes.Repeat([]byte{'x'}, 4000)
	for i := range 200 { // 800 KB: several buffer fills
		// Recorded before the write: in Pebble's invariant builds (-race)
		// a file may scribble over the slice it was given to write.
		piece[0] = byte(i)
		want.Write(piece)
		if _, err := f.Write(piece); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			// Stat and ReadAt see everything written so far.
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != int64(want.Len()) {
				t.Fatalf("size after 11 writes %d, want %d", st.Size(), want.Len())
			}
			got := make([]byte, 4000)
			if _, err := f.ReadAt(got, int64(10*4000)); err != nil {
				t.Fatal(err)
			}
			if got[0] != 10 {
				t.Fatalf("ReadAt returned piece %d, want 10", got[0])
			}
		}
	}
	big := bytes.Repeat([]byte{'y'}, sstWriteBuffer+1) // larger than the buffer: written directly
	want.Write(big)
	if _, err := f.Write(big); err != nil {
		t.Fatal(err)
	}
	want.WriteString("tail")
	if _, err := f.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := mem.Open("000001.sst")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("file holds %d bytes, %d were written (or in another order)", len(got), want.Len())
	}

	w, err := fs.Create("000002.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, ok := w.(*bufferedFile); ok {
		t.Fatal("the WAL is buffered; it must be written as Pebble asks")
	}
}

// failingFile fails every write after the first n bytes.
type failingFile struct {
	vfs.File
	left int
}

var errDiskFull = errors.New("disk full")

func (f *failingFile) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, errDiskFull
	}
	f.left -= len(p)
	return f.File.Write(p)
}

// TestBufferedFileErrorSticks: once a buffered write fails, Sync and Close
// report it and later writes are refused, so a table with a hole in it is
// never synced as if it were whole.
func TestBufferedFileErrorSticks(t *testing.T) {
	mem := vfs.NewMem()
	under, err := mem.Create("000003.sst", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f := &bufferedFile{File: &failingFile{File: under, left: sstWriteBuffer}, buf: make([]byte, 0, sstWriteBuffer)}
	piece := make([]byte, 1000)
	var failed error
	for range 3 * sstWriteBuffer / len(piece) {
		if _, err := f.Write(piece); err != nil {
			failed = err
			break
		}
	}
	if !errors.Is(failed, errDiskFull) {
		t.Fatalf("writing past the failure point gave %v, want %v", failed, errDiskFull)
	}
	if _, err := f.Write(piece); !errors.Is(err, errDiskFull) {
		t.Fatalf("a write after the failure gave %v", err)
	}
	if err := f.Sync(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Sync after the failure gave %v", err)
	}
	if err := f.Close(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Close after the failure gave %v", err)
	}
}
