//go:build !linux

package moqnative

import "net"

// inspectSocket cannot tell outside Linux.
func inspectSocket(*net.UDPConn) SocketInfo { return SocketInfo{} }
