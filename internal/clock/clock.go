// Package clock is the moq-clock track format, as moq-rs's moq-clock-ietf
// publishes it, with a publisher that writes it into a moqtransport.Track
// and a subscriber that prints it.
//
// Stream mode: one group per wall-clock minute, on subgroup 0 with
// publisher priority 0. The first group's ID is the minute number at start
// (0..59), and every later minute adds one (60, 61, ..., no modulo). Object
// 0 is the base, "YYYY-MM-DD HH:MM:" (17 bytes, UTC); objects 1..n are the
// seconds, "SS", one a second (the first group from the current second, the
// others from 00) up to 59. The subgroup stays open for the minute and ends
// (FIN) when the minute changes; there is no End of Group object.
//
// Datagram mode: one datagram a second, object 0, priority 127, payload
// "YYYY-MM-DD HH:MM:SS" (19 bytes); the group ID starts at the minute number
// and adds one every second.
//
// Subscribers print "{object 0}{object N}" for every object N >= 1 of a
// group, and the payload of every datagram.
package clock

import "time"

// Layouts of the payloads (time.Format), all in UTC.
const (
	BaseLayout      = "2006-01-02 15:04:"   // object 0 of a group
	SecondsLayout   = "05"                  // objects 1..n of a group
	TimestampLayout = "2006-01-02 15:04:05" // a datagram, and a printed line
)

// Priorities moq-clock-ietf uses.
const (
	// StreamPriority is the publisher priority of the subgroup streams.
	StreamPriority uint8 = 0
	// DatagramPriority is the publisher priority of the datagrams.
	DatagramPriority uint8 = 127
	// SubscriberPriority is the subscriber priority of the SUBSCRIBE.
	SubscriberPriority uint8 = 127
)

// Base is object 0 of t's group: "YYYY-MM-DD HH:MM:" (17 bytes).
func Base(t time.Time) string { return t.UTC().Format(BaseLayout) }

// Seconds is t's object in its group: "SS" (2 bytes).
func Seconds(t time.Time) string { return t.UTC().Format(SecondsLayout) }

// Timestamp is t's datagram payload and printed line: "YYYY-MM-DD HH:MM:SS"
// (19 bytes).
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// FirstGroup is the group ID a publisher starting at t begins with: the
// minute number, 0..59.
func FirstGroup(t time.Time) uint64 { return uint64(t.UTC().Minute()) }
