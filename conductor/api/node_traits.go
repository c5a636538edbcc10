package api

import (
	"net/http"
	"regexp"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
)

var traitRE = regexp.MustCompile(`^(CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*)$`)

// validTrait checks one trait as Ironic's TRAITS_SCHEMA ("Schema error
// for trait: ...").
func validTrait(t string) *Error { return traitSchema.Validate("trait", t) }

const maxTraits = 50

func (s *Server) getTraits(c echo.Context, n *store.Node) error {
	t := n.Traits
	if t == nil {
		t = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"traits": t})
}

func (s *Server) setTraits(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "traits")
	if err != nil {
		return err
	}
	if e := traitsBodySchema.Validate("body", body); e != nil {
		return e
	}
	list, _ := body["traits"].([]any)
	var traits []string
	for _, t := range list {
		ts := t.(string)
		if !slices.Contains(traits, ts) {
			traits = append(traits, ts)
		}
	}
	if len(traits) > maxTraits {
		return badRequest("Could not modify traits for node %s: A maximum of %d traits per node is allowed.", n.UUID, maxTraits)
	}
	if traits == nil {
		traits = []string{}
	}
	if err := s.updateNode(c, n.UUID, func(n *store.Node) error { n.Traits = traits; return nil }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) addTrait(c echo.Context, n *store.Node) error {
	t := c.Param("trait")
	if e := validTrait(t); e != nil {
		return e
	}
	err := s.updateNode(c, n.UUID, func(n *store.Node) error {
		if slices.Contains(n.Traits, t) {
			return nil
		}
		if len(n.Traits) >= maxTraits {
			return badRequest("Could not modify traits for node %s: A maximum of %d traits per node is allowed.", n.UUID, maxTraits)
		}
		n.Traits = append(n.Traits, t)
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteTraits(c echo.Context, n *store.Node) error {
	if err := s.updateNode(c, n.UUID, func(n *store.Node) error { n.Traits = []string{}; return nil }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteTrait(c echo.Context, n *store.Node) error {
	t := c.Param("trait")
	err := s.updateNode(c, n.UUID, func(n *store.Node) error {
		i := slices.Index(n.Traits, t)
		if i < 0 {
			return notFound("Node %s doesn't have a trait '%s'", n.UUID, t)
		}
		n.Traits = slices.Delete(n.Traits, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
