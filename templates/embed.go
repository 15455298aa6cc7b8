// Package templates embeds the shipped proxy templates into the binary.
package templates

import "embed"

// FS holds one directory per proxy ("nginx", "haproxy"), each with the proxy's default template.
//
//go:embed nginx/*.tmpl haproxy/*.tmpl
var FS embed.FS
