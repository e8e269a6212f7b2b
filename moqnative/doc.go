// Package moqnative is moq-go's transport layer: it runs MoQT
// (draft-ietf-moq-transport-14) over quic-go and webtransport-go.
//
// A Server listens on one UDP socket and serves both bindings of §3.1:
// raw QUIC with ALPN "moq-00", and WebTransport over HTTP/3 (ALPN "h3")
// on any path. Accept returns either kind as a moqtransport.Conn. Dial
// picks the binding from the URL scheme: moqt:// for raw QUIC, https://
// for WebTransport.
//
// Certificates come from PEM files (LoadCertificates, chosen by SNI) or
// are generated (GenerateSelfSigned: ECDSA P-256, valid 10 days, so that
// browsers accept it by its SHA-256 fingerprint through WebTransport's
// serverCertificateHashes). A client can pin that fingerprint
// (ClientTLS.ServerCertificateHashes) as a browser does.
//
// Both endpoints write a qlog file per connection when given a directory,
// and append TLS secrets to the file named by SSLKEYLOGFILE. They log
// through log/slog and are silent by default.
package moqnative
