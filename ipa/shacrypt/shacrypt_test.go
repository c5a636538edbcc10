package shacrypt

import (
	"strings"
	"testing"
)

// The vectors of the SHA-crypt specification.
func TestCrypt(t *testing.T) {
	for _, c := range []struct{ setting, password, want string }{
		{"$6$saltstring", "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"$6$rounds=10000$saltstringsaltstring", "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"$6$rounds=5000$toolongsaltstring", "This is just a test", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	} {
		got, err := Crypt(c.password, c.setting)
		if err != nil || got != c.want {
			t.Errorf("Crypt(%q, %q) = %q, %v; want %q", c.password, c.setting, got, err, c.want)
		}
	}
	if _, err := Crypt("x", "$1$md5"); err == nil {
		t.Error("an MD5 setting was accepted")
	}
}

func TestHashVerifies(t *testing.T) {
	h, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$6$") || len(h) != 3+16+1+86 {
		t.Fatalf("hash %q", h)
	}
	if again, _ := Crypt("s3cret", h); again != h {
		t.Fatalf("rehash %q != %q", again, h)
	}
	if other, _ := Hash("s3cret"); other == h {
		t.Fatal("two hashes share a salt")
	}
}
