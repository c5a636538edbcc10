//go:build linux

package main

import (
	"crypto/rand"
	"crypto/sha512"
	"strings"
)

// cryptAlphabet is crypt(3)'s base-64 alphabet.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// sha512Crypt hashes password with salt (at most 16 characters are used)
// as glibc's crypt(3) does for "$6$salt$" with the default 5000 rounds:
// the form /etc/shadow holds, so that login, su and sshd accept the
// password.
func sha512Crypt(password, salt string) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(password), []byte(salt)
	alt := sha512.New()
	alt.Write(p)
	alt.Write(s)
	alt.Write(p)
	b := alt.Sum(nil)

	a := sha512.New()
	a.Write(p)
	a.Write(s)
	n := len(p)
	for ; n > 64; n -= 64 {
		a.Write(b)
	}
	a.Write(b[:n])
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(b)
		} else {
			a.Write(p)
		}
	}
	sum := a.Sum(nil)

	dp := sha512.New()
	for range len(p) {
		dp.Write(p)
	}
	pSeq := repeatTo(dp.Sum(nil), len(p))
	ds := sha512.New()
	for range 16 + int(sum[0]) {
		ds.Write(s)
	}
	sSeq := repeatTo(ds.Sum(nil), len(s))

	for r := range 5000 {
		c := sha512.New()
		if r&1 != 0 {
			c.Write(pSeq)
		} else {
			c.Write(sum)
		}
		if r%3 != 0 {
			c.Write(sSeq)
		}
		if r%7 != 0 {
			c.Write(pSeq)
		}
		if r&1 != 0 {
			c.Write(sum)
		} else {
			c.Write(pSeq)
		}
		sum = c.Sum(nil)
	}

	var out strings.Builder
	out.WriteString("$6$" + salt + "$")
	put := func(b2, b1, b0 byte, chars int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range chars {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	for i := range 21 {
		x, y, z := sum[i], sum[i+21], sum[i+42]
		switch i % 3 {
		case 0:
			put(x, y, z, 4)
		case 1:
			put(y, z, x, 4)
		default:
			put(z, x, y, 4)
		}
	}
	put(0, 0, sum[63], 2)
	return out.String()
}

// repeatTo is b repeated to n bytes.
func repeatTo(b []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, b[:min(len(b), n-len(out))]...)
	}
	return out
}

// newSalt is a random 16-character crypt salt.
func newSalt() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = cryptAlphabet[int(b[i])%len(cryptAlphabet)]
	}
	return string(b)
}
