package gateway

// RoutePatterns lists the patterns of g's routes, for the test that holds
// them against openapi.json.
func RoutePatterns(g *Gateway) []string {
	var out []string
	for _, rt := range g.routes() {
		out = append(out, rt.pattern)
	}
	return out
}
