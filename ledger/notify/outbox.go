package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/internal/durable"
)

// The outbox is a folder of files, one per event, named by the event's id
// (a UUIDv7, so the names sort oldest first). What a file holds is written
// whole with internal/durable (temporary file, fsync, rename, folder
// fsync): after a crash a file is the old version or the new one, never a
// part. A delivered event's file is removed and the folder fsync'd; a dead
// one is renamed into dead/ and both folders fsync'd. A removal lost in a
// crash delivers the event once more, which at-least-once allows (the
// receiver drops a repeated id).
const (
	outboxDir = "outbox"
	deadDir   = "dead"
)

// item is one event in the outbox.
type item struct {
	ID string `json:"id"`
	// Party is the party whose webhook gets the event; "" is the FG.
	Party string `json:"party,omitempty"`
	Type  string `json:"type"`
	// Body is the CloudEvent as built at enqueue: every attempt sends
	// these bytes (the same id), signed anew.
	Body      json.RawMessage `json:"body"`
	Attempts  int             `json:"attempts"`
	NextAt    time.Time       `json:"next_at"`
	LastError string          `json:"last_error,omitempty"`

	done bool // delivered or dead during this round
}

type outbox struct{ dir string }

func openOutbox(dir string) (*outbox, error) {
	for _, d := range []string{dir, filepath.Join(dir, outboxDir), filepath.Join(dir, deadDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("notify: couldn't create %s: %w", d, err)
		}
	}
	// A crash in the middle of a durable write leaves its temporary file
	// (the rename never happened, so the event's file still holds its
	// previous state): remove them, so they do not pile up.
	for _, sub := range []string{outboxDir, deadDir} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("notify: couldn't list %s: %w", sub, err)
		}
		for _, e := range ents {
			if name := e.Name(); strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
				if err := os.Remove(filepath.Join(dir, sub, name)); err != nil {
					return nil, fmt.Errorf("notify: couldn't remove the interrupted write %s: %w", name, err)
				}
			}
		}
	}
	return &outbox{dir: dir}, nil
}

func (o *outbox) path(sub, id string) string { return filepath.Join(o.dir, sub, id+".json") }

// put writes it durably, replacing an earlier version.
func (o *outbox) put(it *item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("notify: couldn't encode outbox item: %w", err)
	}
	if err := durable.WriteFile(o.path(outboxDir, it.ID), b, 0o600); err != nil {
		return fmt.Errorf("notify: couldn't write the outbox: %w", err)
	}
	return nil
}

// remove deletes a delivered event.
func (o *outbox) remove(id string) error {
	if err := os.Remove(o.path(outboxDir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("notify: couldn't remove a delivered event: %w", err)
	}
	if err := durable.SyncDir(filepath.Join(o.dir, outboxDir)); err != nil {
		return fmt.Errorf("notify: couldn't sync the outbox: %w", err)
	}
	return nil
}

// bury moves an event to the dead-letter folder, with its last state.
func (o *outbox) bury(it *item) error {
	if err := o.put(it); err != nil {
		return err
	}
	if err := os.Rename(o.path(outboxDir, it.ID), o.path(deadDir, it.ID)); err != nil {
		return fmt.Errorf("notify: couldn't dead-letter an event: %w", err)
	}
	for _, d := range []string{deadDir, outboxDir} {
		if err := durable.SyncDir(filepath.Join(o.dir, d)); err != nil {
			return fmt.Errorf("notify: couldn't sync %s: %w", d, err)
		}
	}
	return nil
}

// ids lists the event ids in sub, oldest first.
func (o *outbox) ids(sub string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(o.dir, sub))
	if err != nil {
		return nil, fmt.Errorf("notify: couldn't list %s: %w", sub, err)
	}
	var out []string
	for _, e := range ents {
		// Temporary files of an interrupted write are not events.
		if name := e.Name(); e.Type().IsRegular() && strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
			out = append(out, strings.TrimSuffix(name, ".json"))
		}
	}
	slices.Sort(out)
	return out, nil
}

// list reads every event of the outbox, oldest first.
func (o *outbox) list() ([]*item, error) {
	ids, err := o.ids(outboxDir)
	if err != nil {
		return nil, err
	}
	out := make([]*item, 0, len(ids))
	for _, id := range ids {
		b, err := os.ReadFile(o.path(outboxDir, id))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notify: couldn't read outbox item: %w", err)
		}
		var it item
		if err := json.Unmarshal(b, &it); err != nil || it.ID != id {
			return nil, fmt.Errorf("notify: outbox item %s is corrupt: %w", id, errors.Join(err, errors.New("bad item")))
		}
		out = append(out, &it)
	}
	return out, nil
}

func (o *outbox) counts() (pending, dead int, err error) {
	p, err := o.ids(outboxDir)
	if err != nil {
		return 0, 0, err
	}
	d, err := o.ids(deadDir)
	if err != nil {
		return 0, 0, err
	}
	return len(p), len(d), nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// drain reads a little of an answer so that the connection can be reused;
// a target's answer is not trusted or kept.
func drain(resp *http.Response) { _, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) }
