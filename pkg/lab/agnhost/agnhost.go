// Package agnhost is a tiny stand-in for the agnhost test server: on each
// TCP port it speaks HTTP/1.1 (/clientip, /serverip: the address the
// client reached, /healthz, anything else answers the pod name) and on each UDP port it answers "clientip" datagrams with
// the client's address and anything else with the pod name.
package agnhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

// Config of a server.
type Config struct {
	Name string
	TCP  []int
	UDP  []int
	// Netns is the path of the namespace to open sockets in ("" = current).
	Netns string
	// Host to bind, "" for every address.
	Host string
}

// Server holds the bound sockets.
type Server struct {
	cfg  Config
	tcp  []net.Listener
	udp  []net.PacketConn
	logf func(string, ...any)
}

// Listen validates cfg and binds every port (inside cfg.Netns if set).
func Listen(cfg Config) (*Server, error) {
	if cfg.Name == "" {
		return nil, errors.New("--name is required")
	}
	for _, p := range append(append([]int{}, cfg.TCP...), cfg.UDP...) {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port %d is out of range 1-65535", p)
		}
	}
	s := &Server{cfg: cfg, logf: log.Printf}
	bind := func() error {
		var lc net.ListenConfig
		for _, p := range cfg.TCP {
			l, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(p)))
			if err != nil {
				return fmt.Errorf("bind TCP port %d: %w", p, err)
			}
			s.tcp = append(s.tcp, l)
		}
		for _, p := range cfg.UDP {
			c, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(cfg.Host, strconv.Itoa(p)))
			if err != nil {
				return fmt.Errorf("bind UDP port %d: %w", p, err)
			}
			s.udp = append(s.udp, c)
		}
		return nil
	}
	var err error
	if cfg.Netns == "" {
		err = bind()
	} else {
		h, herr := netns.GetFromPath(cfg.Netns)
		if herr != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", cfg.Netns, herr)
		}
		err = netnsutil.DoHandle(h, bind)
		h.Close()
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// TCPAddrs and UDPAddrs return the bound addresses.
func (s *Server) TCPAddrs() []net.Addr {
	var a []net.Addr
	for _, l := range s.tcp {
		a = append(a, l.Addr())
	}
	return a
}

// UDPAddrs returns the bound UDP addresses.
func (s *Server) UDPAddrs() []net.Addr {
	var a []net.Addr
	for _, c := range s.udp {
		a = append(a, c.LocalAddr())
	}
	return a
}

// Close closes every socket.
func (s *Server) Close() {
	for _, l := range s.tcp {
		l.Close()
	}
	for _, c := range s.udp {
		c.Close()
	}
}

// Serve answers on every socket until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	for _, l := range s.tcp {
		s.logf("listening on %s/tcp (HTTP)", l.Addr())
		wg.Add(1)
		go func(l net.Listener) {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logf("serve %s: %v", l.Addr(), err)
			}
		}(l)
	}
	for _, c := range s.udp {
		s.logf("listening on %s/udp", c.LocalAddr())
		wg.Add(1)
		go func(c net.PacketConn) {
			defer wg.Done()
			s.serveUDP(c)
		}(c)
	}
	<-ctx.Done()
	_ = srv.Close()
	s.Close()
	wg.Wait()
	return nil
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	})
	mux.HandleFunc("/serverip", func(w http.ResponseWriter, r *http.Request) {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			io.WriteString(w, a.String())
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, s.cfg.Name)
	})
	return mux
}

func (s *Server) serveUDP(c net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.logf("read %s/udp: %v", c.LocalAddr(), err)
			}
			return
		}
		reply := s.cfg.Name
		if string(trimNewline(buf[:n])) == "clientip" {
			reply = from.String()
		}
		if _, err := c.WriteTo([]byte(reply), from); err != nil {
			s.logf("reply on %s/udp to %s: %v", c.LocalAddr(), from, err)
		}
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
