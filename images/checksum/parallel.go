package checksum

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// CopyParallel copies src to every writer in ws, feeding each writer from
// its own goroutine so that hashing (md5, sha512, ...) and writing a file
// run on separate cores instead of one after another. Memory is bounded:
// 16 buffers of bufSize are in flight at most. It returns the bytes read and
// the first read or write error.
func CopyParallel(src io.Reader, bufSize int, ws ...io.Writer) (int64, error) {
	const inFlight = 16
	type chunk struct {
		buf  []byte
		n    int
		refs atomic.Int32
	}
	free := make(chan *chunk, inFlight)
	for range inFlight {
		free <- &chunk{buf: make([]byte, bufSize)}
	}
	var (
		firstErr error
		errOnce  sync.Once
		failed   atomic.Bool
		wg       sync.WaitGroup
	)
	setErr := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	chans := make([]chan *chunk, len(ws))
	for i, w := range ws {
		chans[i] = make(chan *chunk, inFlight)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chans[i] {
				if !failed.Load() {
					if _, err := w.Write(c.buf[:c.n]); err != nil {
						setErr(err)
					}
				}
				if c.refs.Add(-1) == 0 {
					free <- c
				}
			}
		}()
	}
	var total int64
	for !failed.Load() {
		c := <-free
		n, err := io.ReadFull(src, c.buf)
		if n > 0 {
			total += int64(n)
			c.n = n
			c.refs.Store(int32(len(ws)))
			for _, ch := range chans {
				ch <- c
			}
		} else {
			free <- c
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			setErr(err)
			break
		}
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	return total, firstErr
}
