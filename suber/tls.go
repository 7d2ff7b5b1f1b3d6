package suber

import (
	"crypto/x509"
	"errors"
)

// tlsHint names the node option that fixes a certificate the gateway
// refused, so the log line that reports it is enough to act on.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return " (trust the node's CA with the node's tls_trust_pool)"
	case errors.As(err, &host):
		return " (name the certificate's host with the node's tls_server_name)"
	}
	return ""
}
