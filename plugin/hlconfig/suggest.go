package hlconfig

import "strings"

// suggest returns the accepted key closest to key, or "" when none is close
// enough to be a likely typo. Case differences alone always match.
func suggest(key string, accepted []string) string {
	best, bestDist := "", -1
	lk := strings.ToLower(key)
	for _, a := range accepted {
		d := editDistance(lk, strings.ToLower(a))
		if bestDist < 0 || d < bestDist {
			best, bestDist = a, d
		}
	}
	if best == "" {
		return ""
	}
	limit := len(best) / 3
	if limit < 2 {
		limit = 2
	}
	if bestDist <= limit {
		return best
	}
	// A truncated or extended key ("MaxOutstandingBytes") is a likely typo too.
	for _, a := range accepted {
		la := strings.ToLower(a)
		if len(lk) >= 4 && (strings.HasPrefix(la, lk) || strings.HasPrefix(lk, la)) {
			return a
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
