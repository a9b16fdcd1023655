package relay

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"
)

// ownServer is the part of the relay that camd serves itself: the
// listener, every plain RTSP (and RTSPS) reader connection, and the UDP
// ports. Connections that start as HTTP (RTSP over HTTP or WebSocket, when
// AllowTunnel is set) are handed to a gortsplib Server through tunnels.
type ownServer struct {
	ln              net.Listener // a doorListener
	udpRTP, udpRTCP *net.UDPConn // nil without UDP
	tunnels         *chanListener
	wg              sync.WaitGroup

	mu     sync.Mutex
	conns  map[*rconn]struct{}
	closed bool
}

// accept is the accept loop. It ends when the listener is closed; before
// Close, that means the relay died (a doorListener waits out every error
// it can), which Err reports.
func (s *Server) accept() {
	defer s.own.wg.Done()
	for {
		nc, err := s.own.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
			default:
				s.died(err)
			}
			return
		}
		s.own.wg.Add(1)
		go s.serveConn(nc)
	}
}

// serveConn routes a new connection: HTTP to the tunnel server, RTSP to
// camd's own.
func (s *Server) serveConn(nc net.Conn) {
	br := bufio.NewReaderSize(nc, 4096)
	head, err := br.Peek(4)
	if err != nil {
		_ = nc.Close() // silent past the first-request deadline, or refused
		s.own.wg.Done()
		return
	}
	if m := string(head); m == "GET " || m == "POST" {
		// Only when tunnelling is allowed: the door connection refuses
		// it otherwise, before Peek returns.
		s.own.wg.Done()
		if s.own.tunnels == nil || !s.own.tunnels.hand(&peekedConn{Conn: nc, br: br}) {
			_ = nc.Close()
		}
		return
	}
	media := nc
	if dc, ok := nc.(*doorConn); ok {
		media = dc.Conn // the TCP connection itself, which writes a batch with one writev
	}
	c := newRConn(s, nc, media, br)
	s.own.mu.Lock()
	if s.own.closed {
		s.own.mu.Unlock()
		_ = nc.Close()
		s.own.wg.Done()
		return
	}
	s.own.conns[c] = struct{}{}
	s.own.mu.Unlock()
	c.run()
	s.own.mu.Lock()
	delete(s.own.conns, c)
	s.own.mu.Unlock()
}

// closeOwn closes the listener, every connection and the UDP ports, and
// waits for their goroutines.
func (s *Server) closeOwn() {
	_ = s.own.ln.Close()
	s.own.mu.Lock()
	s.own.closed = true
	conns := make([]*rconn, 0, len(s.own.conns))
	for c := range s.own.conns {
		conns = append(conns, c)
	}
	s.own.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	if s.own.udpRTP != nil {
		_ = s.own.udpRTP.Close()
		_ = s.own.udpRTCP.Close()
	}
	if s.own.tunnels != nil {
		s.own.tunnels.Close()
	}
	s.own.wg.Wait()
}

// drainUDP reads and drops what readers send to a UDP port (receiver
// reports), so that the socket's buffer never fills.
func (s *Server) drainUDP(c *net.UDPConn) {
	defer s.own.wg.Done()
	buf := make([]byte, 2048)
	for {
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// peekedConn is a connection whose first bytes were read into br.
type peekedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// chanListener is the tunnel server's listener: it accepts the connections
// serveConn hands it.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// hand gives c to the tunnel server; false once it is closed.
func (l *chanListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
