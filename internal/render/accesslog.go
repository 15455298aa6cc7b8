package render

import (
	"errors"
	"fmt"
	"strings"
)

// AccessLog is nginx-proxy's access-log settings, for nginx: DISABLE_ACCESS_LOGS, LOG_FORMAT,
// LOG_FORMAT_ESCAPE and LOG_JSON. The zero value leaves nginx's own access log as it is.
type AccessLog struct {
	Off    bool
	Format string // nginx's log_format text; "" with Off or for nginx's own log
	Escape string // default, json or none
	JSON   bool   // Format is nginx-proxy's JSON one
	Path   string // where vhost-gen's servers log with Format
}

// DefaultAccessLogPath is nginx's (Debian's and the official image's) access log.
const DefaultAccessLogPath = "/var/log/nginx/access.log"

// nginxProxyJSONLog is nginx-proxy's LOG_JSON format.
const nginxProxyJSONLog = `{"time_local":"$time_iso8601","client_ip":"$http_x_forwarded_for","remote_addr":"$remote_addr","request":"$request","status":"$status","body_bytes_sent":"$body_bytes_sent","request_time":"$request_time","upstream_response_time":"$upstream_response_time","upstream_addr":"$upstream_addr","http_referrer":"$http_referer","http_user_agent":"$http_user_agent","request_id":"$request_id"}`

// maxLogFormat bounds LOG_FORMAT.
const maxLogFormat = 4096

// NewAccessLog validates the settings. The format goes into the config in single quotes, so it
// may hold nginx's variables but no quote, backslash or control character; nginx's check then
// refuses an unknown variable, with the whole config (the live one stays). LOG_JSON without
// LOG_FORMAT is nginx-proxy's JSON format, escaped as JSON.
func NewAccessLog(off bool, format, escape string, json bool, path string) (AccessLog, error) {
	l := AccessLog{Off: off, Format: strings.TrimSpace(format), Escape: strings.ToLower(strings.TrimSpace(escape)), JSON: json, Path: path}
	if l.Path == "" {
		l.Path = DefaultAccessLogPath
	}
	if json && l.Format == "" {
		l.Format = nginxProxyJSONLog
		if l.Escape == "" {
			l.Escape = "json"
		}
	}
	switch l.Escape {
	case "":
		l.Escape = "default"
	case "default", "json", "none":
	default:
		return AccessLog{}, errors.New("LOG_FORMAT_ESCAPE must be default, json or none")
	}
	if len(l.Format) > maxLogFormat {
		return AccessLog{}, fmt.Errorf("LOG_FORMAT: %d bytes, at most %d", len(l.Format), maxLogFormat)
	}
	for _, r := range l.Format {
		if r < 0x20 || r == 0x7f || r == '\'' || r == '\\' {
			return AccessLog{}, fmt.Errorf("LOG_FORMAT: character %q not allowed (it is written in single quotes: no quote, backslash or control character)", r)
		}
	}
	if _, err := nginxQuote(l.Path); err != nil {
		return AccessLog{}, fmt.Errorf("access log path: %w", err)
	}
	return l, nil
}
