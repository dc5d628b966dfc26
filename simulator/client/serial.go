package client

import (
	"context"
	"fmt"
	"net"

	"github.com/snwgw/snwgw/transport"
)

// DialSerial opens a serial link with transport.OpenSerial and dials the
// gateway at its other end. With raw framing (the default) gw may be nil:
// the gateway is the single peer of the line, the link's SerialAddr. With
// XBee framing gw is the gateway's transport.XBeeAddr. Cancelling ctx, or
// Close, closes the link.
func DialSerial(ctx context.Context, link transport.SerialOptions, gw net.Addr, opts Options) (*Client, error) {
	raw := link.Framer == nil && (link.Framing == "" || link.Framing == transport.FramingRaw)
	if gw == nil && !raw {
		return nil, fmt.Errorf("%w: the gateway address is needed with %q framing", ErrInvalidOptions, link.Framing)
	}
	conn, err := transport.OpenSerial(ctx, link)
	if err != nil {
		return nil, fmt.Errorf("client: open serial link: %w", err)
	}
	if gw == nil {
		gw = conn.LocalAddr()
	}
	c, err := Dial(conn, gw, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}
