package api

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
)

// shards lists the node shards (API 1.82) with their node counts, largest
// first; nodes without a shard count under "None", as Ironic reports them.
func (s *Server) shards(c echo.Context) error {
	counts := map[string]int{}
	for _, n := range s.st.Nodes(nil) {
		name := "None"
		if n.Shard != nil {
			name = *n.Shard
		}
		counts[name]++
	}
	type shard struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	out := make([]shard, 0, len(counts))
	for name, n := range counts {
		out = append(out, shard{name, n})
	}
	slices.SortFunc(out, func(a, b shard) int { return cmp.Or(b.Count-a.Count, cmp.Compare(a.Name, b.Name)) })
	return c.JSON(http.StatusOK, map[string]any{"shards": out})
}
