// Package docs_test checks the documents in docs/: each SVG diagram is
// well-formed XML with an <svg> root, so that it renders on GitHub and in
// browsers.
package docs_test

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSVGWellFormed parses each docs/*.svg as XML.
func TestSVGWellFormed(t *testing.T) {
	files, err := filepath.Glob("*.svg")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no SVG files in docs/")
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d := xml.NewDecoder(f)
			var root *xml.StartElement
			for {
				tok, err := d.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s: not well-formed: %v", name, err)
				}
				if se, ok := tok.(xml.StartElement); ok && root == nil {
					root = &se
				}
			}
			if root == nil || root.Name.Local != "svg" || root.Name.Space != "http://www.w3.org/2000/svg" {
				t.Fatalf("%s: root element = %v, want svg in the SVG namespace", name, root)
			}
		})
	}
}
