// Package shacrypt computes SHA-512 crypt password hashes ("$6$salt$..."),
// the format of /etc/shadow that Ironic uses for rescue passwords
// (rescue_password_hash_algorithm sha512) and the ramdisk's agent writes.
// It follows Ulrich Drepper's published specification of SHA-crypt; the
// standard library and golang.org/x/crypto have no implementation.
package shacrypt

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	alphabet      = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	defaultRounds = 5000
	maxSalt       = 16
)

// Hash returns the SHA-512 crypt hash of password with a new random salt
// and the default 5000 rounds.
func Hash(password string) (string, error) {
	b := make([]byte, maxSalt)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("shacrypt: salt: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return Crypt(password, "$6$"+string(b))
}

// Crypt hashes password with the setting of a "$6$[rounds=N$]salt[$...]"
// string (an existing hash verifies a password: Crypt(p, h) == h).
func Crypt(password, setting string) (string, error) {
	if !strings.HasPrefix(setting, "$6$") {
		return "", errors.New("shacrypt: not a SHA-512 crypt setting (want $6$)")
	}
	rest := setting[3:]
	rounds, custom := defaultRounds, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		i := strings.IndexByte(r, '$')
		if i < 0 {
			return "", errors.New("shacrypt: rounds= without $")
		}
		n, err := strconv.Atoi(r[:i])
		if err != nil {
			return "", fmt.Errorf("shacrypt: rounds: %w", err)
		}
		rounds, custom, rest = min(max(n, 1000), 999999999), true, r[i+1:]
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > maxSalt {
		salt = salt[:maxSalt]
	}
	sum := digest([]byte(password), []byte(salt), rounds)
	var out strings.Builder
	out.WriteString("$6$")
	if custom {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	encode(&out, sum)
	return out.String(), nil
}

func digest(p, s []byte, rounds int) []byte {
	b := sha512.Sum512(append(append(append([]byte{}, p...), s...), p...))
	a := sha512.New()
	a.Write(p)
	a.Write(s)
	n := len(p)
	for ; n > 64; n -= 64 {
		a.Write(b[:])
	}
	a.Write(b[:n])
	for n = len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(b[:])
		} else {
			a.Write(p)
		}
	}
	c := a.Sum(nil)

	dp := sha512.New()
	for range p {
		dp.Write(p)
	}
	pseq := repeat(dp.Sum(nil), len(p))
	ds := sha512.New()
	for i := 0; i < 16+int(c[0]); i++ {
		ds.Write(s)
	}
	sseq := repeat(ds.Sum(nil), len(s))

	h := sha512.New()
	for i := range rounds {
		h.Reset()
		if i%2 != 0 {
			h.Write(pseq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sseq)
		}
		if i%7 != 0 {
			h.Write(pseq)
		}
		if i%2 != 0 {
			h.Write(c)
		} else {
			h.Write(pseq)
		}
		c = h.Sum(c[:0])
	}
	return c
}

func repeat(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// order is SHA-512 crypt's permutation of the digest's bytes, in groups
// of three encoded as four characters.
var order = [...][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
	{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
	{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}}

func encode(out *strings.Builder, d []byte) {
	put := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(alphabet[w&0x3f])
			w >>= 6
		}
	}
	for _, g := range order {
		put(d[g[0]], d[g[1]], d[g[2]], 4)
	}
	put(0, 0, d[63], 2)
}
