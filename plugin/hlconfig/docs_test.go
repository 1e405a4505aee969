package hlconfig

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryKey keeps docs/configuration.md in step with the schema:
// every key, with its default and range, must appear in its table row.
func TestDocsListEveryKey(t *testing.T) {
	buf, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(buf), "\n") {
		if strings.HasPrefix(line, "| `Config.") {
			key := strings.Trim(strings.Split(line, "|")[1], " `")
			rows[key] = line
		}
	}
	for _, f := range (&Config{}).Fields() {
		row, ok := rows[f.Path]
		if !ok {
			t.Errorf("docs/configuration.md has no row for %s", f.Path)
			continue
		}
		if !strings.Contains(row, f.Default) {
			t.Errorf("docs row for %s lacks its default %q", f.Path, f.Default)
		}
		if f.Range != "" && !strings.Contains(row, f.Range) {
			t.Errorf("docs row for %s lacks its range %q", f.Path, f.Range)
		}
		delete(rows, f.Path)
	}
	for k := range rows {
		t.Errorf("docs/configuration.md documents %s, which the schema lacks", k)
	}
}
