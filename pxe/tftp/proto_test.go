package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// serveProto is an EXPERIMENT for BenchmarkServerCPU (FERRIC_TFTP_IMPL=
// proto): a minimal read-only sender without pin/tftp, to measure what
// its per-block system calls cost. Each transfer has a connected socket
// and sends each block from inside the read callback, after the poller
// was armed, so no read runs before the ACK can be there. Octet mode,
// blksize and tsize only, no error packets; not for use.
func serveProto(conn *net.UDPConn, root string) {
	buf := make([]byte, 516)
	for {
		n, peer, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if n < 4 || binary.BigEndian.Uint16(buf) != 1 {
			continue
		}
		parts := bytes.Split(buf[2:n], []byte{0})
		if len(parts) < 2 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.Base(string(parts[0]))))
		if err != nil {
			continue
		}
		blk, tsize := 512, false
		for i := 2; i+1 < len(parts); i += 2 {
			switch string(bytes.ToLower(parts[i])) {
			case "blksize":
				if v, err := strconv.Atoi(string(parts[i+1])); err == nil && v >= 8 && v <= 1468 {
					blk = v
				}
			case "tsize":
				tsize = true
			}
		}
		local := conn.LocalAddr().(*net.UDPAddr)
		go protoSend(&net.UDPAddr{IP: local.IP}, peer, data, blk, tsize, len(parts) > 3)
	}
}

func protoSend(laddr, peer *net.UDPAddr, data []byte, blk int, tsize, opts bool) {
	c, err := net.DialUDP("udp", laddr, peer)
	if err != nil {
		return
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	pkt := make([]byte, 4+blk)
	ack := make([]byte, 516)
	// exchange sends p and waits for the ACK of block b, resending on
	// timeouts.
	exchange := func(p []byte, b uint16) error {
		for try := 0; try < 5; try++ {
			c.SetReadDeadline(time.Now().Add(time.Second))
			sent := false
			var werr error
			err := rc.Read(func(fd uintptr) bool {
				if !sent {
					sent = true
					if _, werr = unix.Write(int(fd), p); werr != nil {
						return true
					}
					return false // wait for readiness: no read before the ACK
				}
				n, err := unix.Read(int(fd), ack)
				if err == syscall.EAGAIN {
					return false
				}
				if err != nil {
					werr = err
					return true
				}
				return n >= 4 && binary.BigEndian.Uint16(ack) == 4 && binary.BigEndian.Uint16(ack[2:]) == b
			})
			if werr != nil {
				return werr
			}
			if err == nil {
				return nil
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
		}
		return errors.New("no ACK")
	}
	if opts {
		o := []byte{0, 6}
		o = append(o, "blksize\x00"+strconv.Itoa(blk)+"\x00"...)
		if tsize {
			o = append(o, "tsize\x00"+strconv.Itoa(len(data))+"\x00"...)
		}
		if exchange(o, 0) != nil {
			return
		}
	}
	for b := 1; ; b++ {
		off := (b - 1) * blk
		end := min(off+blk, len(data))
		binary.BigEndian.PutUint16(pkt, 3)
		binary.BigEndian.PutUint16(pkt[2:], uint16(b))
		n := copy(pkt[4:], data[off:end])
		if exchange(pkt[:4+n], uint16(b)) != nil || n < blk {
			return
		}
	}
}
