package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// rawLog serves leaf records of any bytes at the C2SP tlog-tiles paths
// with a checkpoint signed by real keys: a log no Spoor ledger of this
// version can write, such as one holding an entry type from the future.
type rawLog struct {
	t      *testing.T
	signer *verifier.CheckpointSigner
	mu     sync.Mutex
	tree   *memtree.MemTree
	recs   [][]byte
	cp     []byte
}

func (l *rawLog) add(rec []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, rec)
	l.tree.Append(l.t, rec)
	cp, err := l.signer.Sign(l.signer.Origin(), uint64(len(l.recs)), l.tree.Root(l.t, l.tree.Size()))
	if err != nil {
		l.t.Fatal(err)
	}
	l.cp = cp
}

func (l *rawLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "checkpoint" {
		_, _ = w.Write(l.cp)
		return
	}
	level, n, width, entries, err := verifier.ParseTilePath(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if entries {
		level = 0
	}
	count := uint64(l.tree.Size()) >> (verifier.TileHeight * level)
	start := n * verifier.TileWidth
	if start >= count || uint64(width) > min(uint64(verifier.TileWidth), count-start) {
		http.NotFound(w, r)
		return
	}
	if entries {
		var b []byte
		for _, rec := range l.recs[start : start+uint64(width)] {
			b = verifier.AppendEntry(b, rec)
		}
		_, _ = w.Write(b)
		return
	}
	b, err := l.tree.TileData(tlog.Tile{H: verifier.TileHeight, L: level, N: int64(n), W: width})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}

// TestMonitorRefusesNewerEntryType: when the log grows by an entry of a
// type newer than this version reads (type 6), the check is refused with
// a message naming the type and saying to upgrade; it is not an alarm (the
// log is not misbehaving) and the state stays at the last size it could
// read, so that an upgraded monitor reads those leaves again.
func TestMonitorRefusesNewerEntryType(t *testing.T) {
	origin := "example.org/spoor/monitor-test"
	ls, lv, cs, cv, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(lv, cv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verifier.NewCheckpointSigner(ls, cs)
	if err != nil {
		t.Fatal(err)
	}
	l := &rawLog{t: t, signer: signer, tree: memtree.New()}
	record := func(ty verifier.EntryType, i int) []byte {
		rec, err := (&verifier.LeafRecord{Type: ty, BodyHash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))),
			IntegratedAt: time.UnixMilli(1767603600000 + int64(i))}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	l.add(record(verifier.EntryCovenant, 0))
	for i := 1; i < 300; i++ {
		l.add(record(verifier.EntryDisclosure, i))
	}
	srv := httptest.NewServer(l)
	defer srv.Close()
	mon, err := New(Config{Client: &tlogclient.Client{URL: srv.URL, Keys: keys}, StatePath: filepath.Join(t.TempDir(), "state"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := mon.Check(ctx); err != nil {
		t.Fatalf("first check: %v", err)
	}
	// Growth of known types reads the new leaves and passes.
	for i := 300; i < 310; i++ {
		l.add(record(verifier.EntryAnswer, i))
	}
	if out, err := mon.Check(ctx); err != nil || out.Checkpoint.Size != 310 {
		t.Fatalf("growth by answer entries: %+v, %v", out, err)
	}

	future := record(verifier.EntryDisclosure, 310)
	future[1] = byte(verifier.LatestEntryType) + 1
	l.add(future)
	l.add(record(verifier.EntryDisclosure, 311))
	_, err = mon.Check(ctx)
	var alarm *Alarm
	var newer *verifier.UnknownEntryTypeError
	if errors.As(err, &alarm) || !errors.As(err, &newer) || newer.Type != 6 {
		t.Fatalf("growth by an entry of type 6: %v; want a refusal naming the type, not an alarm", err)
	}
	for _, want := range []string{"leaf 310", "entry type 6", "upgrade spoor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if got := readState(t, mon); got.Size != 310 {
		t.Errorf("the state moved to size %d past an entry the monitor could not read", got.Size)
	}
}
