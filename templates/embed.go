// Package templates embeds the shipped proxy templates into the binary.
package templates

import "embed"

// FS holds one directory per proxy ("nginx", ...), each with the proxy's default template.
//
//go:embed nginx/*.tmpl
var FS embed.FS
