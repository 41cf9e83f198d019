package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGitignoreCoversREADMEFiles: every file the README's commands tell a
// reader to create in the checkout (keys, bundles, reports, state: the
// targets of -o, --report, --html, --state and of a shell redirection) is
// ignored by git, so that a demo key or a bundle is never committed.
func TestGitignoreCoversREADMEFiles(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed: the .gitignore cannot be checked")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	inBlock := false
	for line := range strings.Lines(string(readme)) {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			code.WriteString(line)
		}
	}
	target := regexp.MustCompile(`(?:\s-o|--report|--html|--state|\s>)\s+([A-Za-z0-9_.$/-]+)`)
	seen := map[string]bool{}
	for _, m := range target.FindAllStringSubmatch(code.String(), -1) {
		name := m[1]
		if name == "spoor" || strings.HasPrefix(name, "/dev/") {
			continue // the binary (ignored as /spoor), not a file with data
		}
		for _, i := range []string{"0", "1", "2"} {
			seen[strings.ReplaceAll(name, "$i", i)] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d files the README creates: the pattern no longer matches its commands", len(seen))
	}
	for name := range seen {
		cmd := exec.Command(git, "-C", root, "check-ignore", "-q", "--no-index", name)
		if err := cmd.Run(); err != nil {
			t.Errorf("the README creates %s, which .gitignore does not cover", name)
		}
	}
}
