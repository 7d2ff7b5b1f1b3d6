package app

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalTransport parses one TLS or header line of a node block (see
// App.UnmarshalCaddyfile). Errors never repeat a header value: it may be
// an API key.
func (nc *NodeConfig) unmarshalTransport(d *caddyfile.Dispenser) error {
	opt := d.Val()
	if opt == "header" {
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("header needs a name and a value")
		}
		if err := checkHeaderName(args[0]); err != nil {
			return d.WrapErr(err)
		}
		if args[1] == "" {
			return d.Errf("header %s: empty value", args[0])
		}
		if nc.Headers == nil {
			nc.Headers = make(map[string][]string)
		}
		nc.Headers[args[0]] = append(nc.Headers[args[0]], args[1])
		return nil
	}
	if scheme, _, _ := strings.Cut(nc.URL, "://"); !strings.Contains(scheme, "{") {
		if s := strings.ToLower(scheme); s != "wss" && s != "https" {
			return d.Errf("%s: TLS options apply to wss:// and https:// nodes, not %s://", opt, s)
		}
	}
	if nc.TLS == nil {
		nc.TLS = new(NodeTLS)
	}
	t := nc.TLS
	args := d.RemainingArgs()
	switch opt {
	case "tls_trust_pool":
		if len(args) < 2 {
			return d.Errf("tls_trust_pool needs a source (file or pem) and at least one value")
		}
		switch args[0] {
		case "file":
			t.CAFiles = append(t.CAFiles, args[1:]...)
		case "pem":
			t.CAPEM = append(t.CAPEM, args[1:]...)
		default:
			return d.Errf("tls_trust_pool source '%s': must be file or pem", args[0])
		}
	case "tls_client_auth":
		if len(args) != 2 {
			return d.Errf("tls_client_auth needs a certificate file and a key file")
		}
		if t.ClientCertificateFile != "" {
			return d.Errf("tls_client_auth is given twice")
		}
		t.ClientCertificateFile, t.ClientCertificateKeyFile = args[0], args[1]
	case "tls_server_name":
		if len(args) != 1 {
			return d.Errf("tls_server_name needs one name")
		}
		t.ServerName = args[0]
	case "tls_insecure_skip_verify":
		if len(args) != 0 {
			return d.Errf("tls_insecure_skip_verify takes no argument")
		}
		t.InsecureSkipVerify = true
	}
	return nil
}
