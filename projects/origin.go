package projects

import (
	"fmt"
	"net/url"
	"strings"
)

// normalizeOrigin returns origin in the form browsers send in the Origin
// header: scheme and host in lower case, no default port, no trailing
// slash (the rule the handler's CORS list follows). "*" stays "*".
func normalizeOrigin(origin string) (string, error) {
	if origin == "*" {
		return origin, nil
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "HTTP" && u.Scheme != "HTTPS") ||
		u.Host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery ||
		strings.Contains(origin, "#") || u.User != nil || strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("%q is not an origin like https://app.example.com or *", origin)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, nil
	}
	return scheme + "://" + host, nil
}

// normalizeOrigins rewrites each valid origin of list in place; invalid
// ones stay for Validate to report.
func normalizeOrigins(list []string) {
	for i, o := range list {
		if n, err := normalizeOrigin(o); err == nil {
			list[i] = n
		}
	}
}
