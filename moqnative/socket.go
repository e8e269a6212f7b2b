package moqnative

import (
	"log/slog"
	"net"
)

// WantedSocketBuffer is the UDP socket buffer size quic-go asks the kernel
// for (7 MiB, both directions), as the kernel reports it (SO_RCVBUF and
// SO_SNDBUF). quic-go asks once, when the socket is first used; the kernel
// caps what an unprivileged process gets at net.core.rmem_max and
// net.core.wmem_max.
const WantedSocketBuffer = 7 << 20

// SocketInfo describes a UDP socket as quic-go uses it.
type SocketInfo struct {
	// ReceiveBuffer and SendBuffer are the socket's buffer sizes in bytes,
	// as the kernel reports them (0 where it cannot be told).
	ReceiveBuffer, SendBuffer int
	// GSO says whether the kernel offers UDP generic segmentation offload
	// on the socket and quic-go is allowed to use it (QUIC_GO_DISABLE_GSO
	// unset): quic-go then hands the kernel a train of packets in one
	// sendmsg instead of one sendmsg per packet. quic-go turns it off for
	// a connection whose first GSO send fails.
	GSO bool
}

// SmallBuffers reports whether the kernel gave less than quic-go wants.
func (i SocketInfo) SmallBuffers() bool {
	return (i.ReceiveBuffer > 0 && i.ReceiveBuffer < WantedSocketBuffer) ||
		(i.SendBuffer > 0 && i.SendBuffer < WantedSocketBuffer)
}

// checkSocket inspects a socket quic-go has set up and warns, once per
// socket, when its buffers are below what quic-go wants: at high rates the
// kernel then drops packets (a receive buffer that overflows) or the
// sender stalls, and quic-go's loss recovery takes the throughput down.
func checkSocket(udp *net.UDPConn, logger *slog.Logger) SocketInfo {
	info := inspectSocket(udp)
	if info.SmallBuffers() {
		logger.Warn("UDP socket buffers are smaller than quic-go wants; raise the kernel's caps with `sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000` (as root) and restart",
			"receive_kib", info.ReceiveBuffer>>10, "send_kib", info.SendBuffer>>10, "wanted_kib", WantedSocketBuffer>>10)
	}
	logger.Debug("UDP socket", "gso", info.GSO, "receive_kib", info.ReceiveBuffer>>10, "send_kib", info.SendBuffer>>10)
	return info
}
