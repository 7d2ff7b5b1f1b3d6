package app

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// NodeTLS configures the TLS of wss:// and https:// node connections, like
// the TLS options of reverse_proxy's HTTP transport.
type NodeTLS struct {
	// CAFiles are PEM files of the certificate authorities trusted to sign
	// the node's certificate. With CAFiles or CAPEM, only these are
	// trusted, not the system's roots. Placeholders are replaced.
	CAFiles []string `json:"ca_files,omitempty"`
	// CAPEM are PEM-encoded CA certificates, trusted like CAFiles; e.g.
	// {env.NODE_CA_PEM}.
	CAPEM []string `json:"ca_pem,omitempty"`
	// ClientCertificateFile is the PEM certificate presented to a node
	// that requires mutual TLS. Placeholders are replaced.
	ClientCertificateFile string `json:"client_certificate_file,omitempty"`
	// ClientCertificateKeyFile is the PEM key of ClientCertificateFile.
	ClientCertificateKeyFile string `json:"client_certificate_key_file,omitempty"`
	// ServerName is the name the node's certificate must carry, when it
	// differs from the URL's host (an IP address, another name).
	ServerName string `json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any certificate from the node. For tests
	// only: it is logged as a warning at every config load.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// nodeTransport is what a node's connections need besides its URL, with
// placeholders replaced and files read.
type nodeTransport struct {
	tls    *tls.Config
	header http.Header
	// fingerprint changes with any setting and with the contents of the
	// files named, so that a reload changing any of them (a renewed client
	// certificate, a rotated API key) connects anew instead of reusing the
	// connections made with the old ones. It holds no secret in clear.
	fingerprint string
}

// reservedHeaders are set by the WebSocket handshake or the HTTP framing
// and cannot be configured.
var reservedHeaders = []string{
	"Connection", "Upgrade", "Content-Length", "Content-Type", "Transfer-Encoding", "Te", "Trailer",
	"Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Sec-Websocket-Accept",
}

// checkHeaderName rejects names net/http would refuse or the transports
// set themselves.
func checkHeaderName(name string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("header name %q: not a valid HTTP header name", name)
	}
	if slices.Contains(reservedHeaders, http.CanonicalHeaderKey(name)) {
		return fmt.Errorf("header %s is set by the gateway and cannot be configured", http.CanonicalHeaderKey(name))
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 127 && r > 32 && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// checkTransport checks what needs no placeholder replaced or file read.
// Errors name headers, never their values.
func (nc *NodeConfig) checkTransport() error {
	for name, vals := range nc.Headers {
		if err := checkHeaderName(name); err != nil {
			return err
		}
		if len(vals) == 0 {
			return fmt.Errorf("header %s: no value", name)
		}
	}
	if t := nc.TLS; t != nil && (t.ClientCertificateFile == "") != (t.ClientCertificateKeyFile == "") {
		return fmt.Errorf("tls: a client certificate needs both its certificate file and its key file")
	}
	return nil
}

// provisionTransport replaces placeholders, reads the files and builds the
// node's TLS config and header. scheme is the URL's, placeholders replaced.
func (nc *NodeConfig) provisionTransport(scheme string, repl *caddy.Replacer) (nodeTransport, error) {
	var tr nodeTransport
	if err := nc.checkTransport(); err != nil {
		return tr, err
	}
	fp := sha256.New()
	field := func(parts ...string) {
		for _, p := range parts {
			fmt.Fprintf(fp, "%d:%s", len(p), p)
		}
	}
	if len(nc.Headers) > 0 {
		tr.header = make(http.Header, len(nc.Headers))
		names := make([]string, 0, len(nc.Headers))
		for name := range nc.Headers {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			for _, v := range nc.Headers[name] {
				v = repl.ReplaceKnown(v, "")
				if v == "" {
					return tr, fmt.Errorf("header %s: empty value (unset environment variable?)", name)
				}
				if strings.ContainsAny(v, "\r\n\x00") {
					return tr, fmt.Errorf("header %s: the value holds a line break or NUL", name)
				}
				tr.header.Add(name, v)
				field("header", http.CanonicalHeaderKey(name), v)
			}
		}
	}
	if nc.TLS != nil {
		if scheme != "wss" && scheme != "https" {
			return tr, fmt.Errorf("tls options apply to wss:// and https:// nodes, not %s://", scheme)
		}
		cfg, err := nc.TLS.build(repl, field)
		if err != nil {
			return tr, fmt.Errorf("tls: %w", err)
		}
		tr.tls = cfg
	}
	tr.fingerprint = hex.EncodeToString(fp.Sum(nil))
	return tr, nil
}

// build makes the client TLS config, feeding every input, file contents
// included, to field.
func (t *NodeTLS) build(repl *caddy.Replacer, field func(...string)) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var pool *x509.CertPool
	for _, f := range t.CAFiles {
		f = repl.ReplaceKnown(f, "")
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("trust pool: %w", err)
		}
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("trust pool: %s holds no PEM certificate", f)
		}
		field("ca", string(pem))
	}
	for i, p := range t.CAPEM {
		p = repl.ReplaceKnown(p, "")
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(p)) {
			return nil, fmt.Errorf("trust pool: PEM %d holds no certificate", i)
		}
		field("ca", p)
	}
	cfg.RootCAs = pool
	if t.ClientCertificateFile != "" {
		certFile, keyFile := repl.ReplaceKnown(t.ClientCertificateFile, ""), repl.ReplaceKnown(t.ClientCertificateKeyFile, "")
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		field("client", string(certPEM), string(keyPEM))
	}
	cfg.ServerName = repl.ReplaceKnown(t.ServerName, "")
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	field("server_name", cfg.ServerName, fmt.Sprint("insecure", cfg.InsecureSkipVerify))
	return cfg, nil
}
