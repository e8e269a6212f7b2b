package moqtransport

import "github.com/moqgo/moq/moqtransport/wire"

// Tracer receives a session's MoQT events as they happen: every control
// message parsed or created, every subgroup header and object read or
// written, every datagram. Package mlog writes them as a qlog MoQT event
// log. Methods are called on the session's goroutines, concurrently; they
// must not block and must not keep the payloads.
type Tracer interface {
	ControlMessage(created bool, m wire.Message)
	SubgroupHeader(created bool, h *wire.SubgroupHeader)
	SubgroupObject(created bool, h *wire.SubgroupHeader, o *wire.ObjectHeader)
	FetchHeader(created bool, requestID uint64)
	FetchObject(created bool, o *wire.ObjectHeader)
	Datagram(created bool, d *wire.Datagram)
}
