package tether_test

import (
	"encoding/xml"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The diagrams the README shows are well-formed SVG.
func TestDocsSVG(t *testing.T) {
	for _, name := range []string{"docs/event-flow.svg", "docs/states.svg"} {
		f, err := os.Open(name)
		require.NoError(t, err)
		d := xml.NewDecoder(f)
		var root string
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			require.NoError(t, err, name)
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		f.Close()
		require.Equal(t, "svg", root, name)
	}
}
