// Package moqnative is moq-go's transport layer: it runs MoQT
// (draft-ietf-moq-transport-14) over quic-go and webtransport-go.
//
// # Which API do I need?
//
//   - A MoQT server or relay on its own port: Listen. A Server serves both
//     bindings of §3.1 on one UDP socket, raw QUIC with ALPN "moq-00" and
//     WebTransport over HTTP/3 (ALPN "h3") on any path; Accept returns
//     either kind as a moqtransport.Conn for moqtransport.Accept.
//   - A client: Dial picks the binding from the URL scheme, moqt:// for
//     raw QUIC and https:// for WebTransport, and returns a
//     moqtransport.Conn for moqtransport.Connect.
//   - QUIC connections the program accepts or dials with quic-go itself:
//     NewQUICConn (ALPN moq-00). WebTransport sessions it has from
//     webtransport-go: NewWebTransportConn.
//   - MoQT on an HTTP/3 server the program already runs, next to its other
//     routes: WebTransportHandler.
//
// # Composing with quic-go
//
// ServerConfig and ClientConfig take a *quic.Config (QUICConfig says which
// of its fields MoQT overrides, and why) and a *quic.Transport or
// net.PacketConn to listen or dial on, e.g. one socket for a relay's
// server and its dials to other relays. Their zero values bind a socket of
// their own with this package's QUIC settings.
//
// # Certificates
//
// Certificates come from PEM files (LoadCertificates, chosen by SNI) or
// are generated (GenerateSelfSigned: ECDSA P-256, valid 10 days, so that
// browsers accept it by its SHA-256 fingerprint through WebTransport's
// serverCertificateHashes). A Server that generated its certificate
// renews it when half its validity is left, so its fingerprint changes
// every few days (Server.Fingerprint). A client can pin that fingerprint
// (ClientTLS.ServerCertificateHashes) as a browser does.
//
// Servers and Dial write a qlog file per connection when given a
// directory, and append TLS secrets to the file named by SSLKEYLOGFILE.
// They log through log/slog and are silent by default.
package moqnative
