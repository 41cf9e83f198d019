package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// MutualTLSConfig returns the TLS configuration of a gateway that requires
// client certificates (Digikoppeling's two-sided TLS): the server presents
// cert, and a client must present a certificate that chains to one of the
// PEM certificates in clientCAs (the PKIoverheid private-services CA bundle
// in production). Who the certificate names is checked per request
// (Config.RequireClientCert): the listener only checks the chain.
func MutualTLSConfig(cert tls.Certificate, clientCAs []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCAs) {
		return nil, errors.New("gateway: the client CA bundle holds no PEM certificate")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// Digikoppeling requires TLS 1.2 or newer.
		MinVersion: tls.VersionTLS12,
	}, nil
}
