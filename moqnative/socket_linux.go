package moqnative

import (
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// inspectSocket reads the socket's buffer sizes and whether quic-go may
// use GSO on it, the way quic-go decides it: a kernel that answers
// getsockopt(UDP_SEGMENT), and QUIC_GO_DISABLE_GSO not set.
func inspectSocket(udp *net.UDPConn) SocketInfo {
	var info SocketInfo
	rc, err := udp.SyscallConn()
	if err != nil {
		return info
	}
	var gsoErr error
	_ = rc.Control(func(fd uintptr) {
		info.ReceiveBuffer, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		info.SendBuffer, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		_, gsoErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	})
	disabled, _ := strconv.ParseBool(os.Getenv("QUIC_GO_DISABLE_GSO"))
	info.GSO = gsoErr == nil && !disabled
	return info
}
