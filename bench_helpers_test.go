package plume

import (
	"io"
	"net"

	"github.com/gobwas/ws/wsutil"
)

func writeClientText(nc net.Conn, s string) error { return wsutil.WriteClientText(nc, []byte(s)) }

func readFull(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }
