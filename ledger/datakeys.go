package ledger

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/internal/durable"
)

// DataKeys is the key store for encryption at rest: one AES-256 data key
// per (retention class, month of integrated_at), each in its own file
// (0600) in a folder outside the Pebble store. An envelope is sealed under
// the key of its class and month; once every envelope under a key has been
// erased and the key's term is over, the key file is removed, which makes
// every remaining copy of those envelopes (an old backup of the store, a
// remnant in a recycled table file) unreadable.
//
// The folder must be backed up separately from the store, on a short
// rotation: a destroyed key survives only in key backups made before its
// destruction.
type DataKeys struct {
	dir  string
	mu   sync.Mutex
	keys map[string]cipher.AEAD
}

// ErrKeyDestroyed means an envelope's data key no longer exists: the
// envelope was crypto-erased.
var ErrKeyDestroyed = errors.New("ledger: data key destroyed")

var dataKeyIDRE = regexp.MustCompile(`^r([0-9]{5})-([0-9]{4})([0-9]{2})$`)

// OpenDataKeys opens (creating) the key folder dir.
func OpenDataKeys(dir string) (*DataKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create data key folder: %w", err)
	}
	return &DataKeys{dir: dir, keys: map[string]cipher.AEAD{}}, nil
}

// dataKeyID names the key of a retention class (days) and a month.
func dataKeyID(days int, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("r%05d-%04d%02d", days, t.Year(), int(t.Month()))
}

// parseDataKeyID returns a key's retention class and the end of its month.
func parseDataKeyID(id string) (days int, monthEnd time.Time, ok bool) {
	m := dataKeyIDRE.FindStringSubmatch(id)
	if m == nil {
		return 0, time.Time{}, false
	}
	days, _ = strconv.Atoi(m[1])
	y, _ := strconv.Atoi(m[2])
	mo, _ := strconv.Atoi(m[3])
	if mo < 1 || mo > 12 {
		return 0, time.Time{}, false
	}
	return days, time.Date(y, time.Month(mo)+1, 1, 0, 0, 0, 0, time.UTC), true
}

func (k *DataKeys) path(id string) string { return filepath.Join(k.dir, id+".key") }

// aead returns the key id's cipher, creating and durably writing the key
// when create is set and it does not exist yet.
func (k *DataKeys) aead(id string, create bool) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.keys[id]; ok {
		return a, nil
	}
	raw, err := os.ReadFile(k.path(id))
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		raw = make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("couldn't make data key: %w", err)
		}
		if err := durable.CreateFile(k.path(id), raw, 0o600); err != nil {
			return nil, fmt.Errorf("couldn't store data key %s: %w", id, err)
		}
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("data key %s: %w", id, ErrKeyDestroyed)
	case err != nil:
		return nil, fmt.Errorf("couldn't read data key %s: %w", id, err)
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("data key %s is %d bytes: %w", id, len(raw), ErrCorrupt)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k.keys[id] = a
	return a, nil
}

// sealedPrefix marks an encrypted body; a plain envelope starts with '{'.
const sealedPrefix = 0x01

// seal encrypts an envelope for leaf index under key id. The leaf index
// and key id are authenticated, so a sealed body cannot be moved to
// another leaf.
func (k *DataKeys) seal(id string, index uint64, plain []byte) ([]byte, error) {
	a, err := k.aead(id, true)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 2+len(id)+a.NonceSize()+len(plain)+a.Overhead())
	out = append(out, sealedPrefix, byte(len(id)))
	out = append(out, id...)
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return a.Seal(out, nonce, plain, sealAAD(id, index)), nil
}

func sealAAD(id string, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("spoor/envelope/v1\x00"+id+"\x00"), index)
}

// sealedKeyID returns the key id of a sealed body, or "" for a plain one.
func sealedKeyID(body []byte) string {
	if len(body) < 2 || body[0] != sealedPrefix || len(body) < 2+int(body[1]) {
		return ""
	}
	return string(body[2 : 2+int(body[1])])
}

// open decrypts a stored body of leaf index; a plain body is returned as is.
func (k *DataKeys) open(index uint64, body []byte) ([]byte, error) {
	if len(body) == 0 || body[0] != sealedPrefix {
		return body, nil
	}
	id := sealedKeyID(body)
	if id == "" || k == nil {
		return nil, fmt.Errorf("sealed body of leaf %d without a usable key id: %w", index, ErrCorrupt)
	}
	a, err := k.aead(id, false)
	if err != nil {
		return nil, err
	}
	rest := body[2+len(id):]
	if len(rest) < a.NonceSize() {
		return nil, fmt.Errorf("sealed body of leaf %d is truncated: %w", index, ErrCorrupt)
	}
	plain, err := a.Open(nil, rest[:a.NonceSize()], rest[a.NonceSize():], sealAAD(id, index))
	if err != nil {
		return nil, fmt.Errorf("sealed body of leaf %d does not decrypt: %w", index, ErrCorrupt)
	}
	return plain, nil
}

// ids lists the key ids in the folder.
func (k *DataKeys) ids() ([]string, error) {
	des, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("couldn't list data keys: %w", err)
	}
	var out []string
	for _, de := range des {
		name := de.Name()
		if id, ok := cutSuffix(name, ".key"); ok && dataKeyIDRE.MatchString(id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// destroy removes a key for good.
func (k *DataKeys) destroy(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, id)
	if err := os.Remove(k.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("couldn't destroy data key %s: %w", id, err)
	}
	return durable.SyncDir(k.dir)
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}
