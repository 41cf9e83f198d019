package aboutchild

import "golang.org/x/crypto/argon2"

// testKey recomputes the AEAD key for the golden vector's record, so that
// another implementation can check its Argon2id step on its own.
func (sp *SealedProof) testKey(number string) []byte {
	pw := []byte(sealPassword + sp.IDType + "\x00" + number)
	return argon2.IDKey(pw, sp.Salt[:], uint32(sp.Params.Time), sp.Params.MemoryKiB, sp.Params.Threads, 32)
}
