package api

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"
)

// loadHtpasswd reads an htpasswd file of bcrypt hashes (htpasswd -B).
func loadHtpasswd(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api: htpasswd: %w", err)
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("api: htpasswd %s: only bcrypt entries are supported (user %q)", path, user)
		}
		users[user] = []byte(hash)
	}
	return users, sc.Err()
}

// auth enforces http_basic when configured.
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.users == nil {
			return next(c)
		}
		user, pass, ok := c.Request().BasicAuth()
		if ok {
			if hash, found := s.users[user]; found && bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil {
				return next(c)
			}
		}
		return &Error{Code: http.StatusUnauthorized, Plain: true, Msg: "Authentication required"}
	}
}
