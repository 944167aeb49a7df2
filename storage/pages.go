package storage

import (
	"encoding/binary"
	"fmt"
	"io"
)

// bbolt trusts its pages: a branch that points back at itself loops a
// cursor forever, an element whose offset runs off its page reads (or
// faults on) whatever lies beyond. So before the first bbolt read, Open
// walks the page tree itself, from the file, with every offset checked and
// every page visited at most once: damage becomes an error, not a hang or
// a crash. The layout is go.etcd.io/bbolt's internal/common page.go.
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	elementSize      = 16 // branch: pos, ksize uint32, pgid uint64; leaf: flags, pos, ksize, vsize uint32
	bucketHeaderSize = 16 // root pgid, sequence
	maxTreeDepth     = 64
)

type pageWalker struct {
	r    io.ReaderAt
	ps   uint64
	hwm  uint64
	seen []bool // by page id
}

// checkPages reads every page reachable from meta m and the freelist, and
// describes the first damage it finds ("" for none).
func checkPages(r io.ReaderAt, m boltMeta) string {
	w := &pageWalker{r: r, ps: uint64(m.pageSize), hwm: m.pgid, seen: make([]bool, m.pgid)}
	if err := w.tree(m.root, 0, nil); err != nil {
		return err.Error()
	}
	if m.freelist == noFreelist {
		return ""
	}
	if err := w.freelist(m.freelist); err != nil {
		return err.Error()
	}
	return ""
}

// page reads page id and the overflow pages after it, marking them seen.
func (w *pageWalker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d is outside the file's %d pages", id, w.hwm)
	}
	var hdr [pageHeaderSize]byte
	if _, err := w.r.ReadAt(hdr[:], int64(id*w.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	e := binary.NativeEndian
	if got := e.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	n := uint64(e.Uint32(hdr[12:])) + 1
	if n > w.hwm-id {
		return nil, fmt.Errorf("page %d runs %d pages past the file's %d", id, n, w.hwm)
	}
	for i := id; i < id+n; i++ {
		if w.seen[i] {
			return nil, fmt.Errorf("page %d is reached twice", i)
		}
		w.seen[i] = true
	}
	b := make([]byte, n*w.ps)
	if _, err := w.r.ReadAt(b, int64(id*w.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return b, nil
}

// tree checks the page tree rooted at page id. first, if not nil, is the
// key the parent branch holds for the page: bbolt finds a node in its
// parent by the node's first key when it writes it back, so a page whose
// first key differs (or is empty) makes its next write insert a second
// entry for it ("circular dependency", or a silently broken tree).
func (w *pageWalker) tree(id uint64, depth int, first []byte) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d is %d levels deep", id, depth)
	}
	p, err := w.page(id)
	if err != nil {
		return err
	}
	e := binary.NativeEndian
	flags, count := e.Uint16(p[8:]), uint64(e.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > uint64(len(p)) {
		return fmt.Errorf("page %d claims %d elements, more than fit", id, count)
	}
	if first != nil && count > 0 {
		var pos, ksize uint64
		switch flags {
		case branchPageFlag:
			pos, ksize = uint64(e.Uint32(p[pageHeaderSize:])), uint64(e.Uint32(p[pageHeaderSize+4:]))
		case leafPageFlag:
			pos, ksize = uint64(e.Uint32(p[pageHeaderSize+4:])), uint64(e.Uint32(p[pageHeaderSize+8:]))
		}
		if end := pageHeaderSize + pos + ksize; end <= uint64(len(p)) && string(p[pageHeaderSize+pos:end]) != string(first) {
			return fmt.Errorf("page %d: its first key %.40q is not its parent's key %.40q for it", id, p[pageHeaderSize+pos:end], first)
		}
	}
	switch flags {
	case leafPageFlag:
		return w.leaf(id, p, depth)
	case branchPageFlag:
		for i := range count {
			off := pageHeaderSize + i*elementSize
			el := p[off:]
			start := off + uint64(e.Uint32(el[0:]))
			end := start + uint64(e.Uint32(el[4:]))
			if end > uint64(len(p)) {
				return fmt.Errorf("page %d: element %d runs past the page", id, i)
			}
			if end == start { // the child's first key; bbolt asserts on an empty one
				return fmt.Errorf("page %d: element %d has an empty key", id, i)
			}
			if err := w.tree(e.Uint64(el[8:]), depth+1, p[start:end]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("page %d has type %#x where a branch or leaf page belongs", id, flags)
}

// leaf checks a leaf page (p holds its header) and the buckets it holds,
// inline ones included.
func (w *pageWalker) leaf(id uint64, p []byte, depth int) error {
	e := binary.NativeEndian
	if len(p) < pageHeaderSize || e.Uint16(p[8:]) != leafPageFlag {
		return fmt.Errorf("page %d: inline bucket page is malformed", id)
	}
	count := uint64(e.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > uint64(len(p)) {
		return fmt.Errorf("page %d claims %d elements, more than fit", id, count)
	}
	for i := range count {
		off := pageHeaderSize + i*elementSize
		el := p[off:]
		start := off + uint64(e.Uint32(el[4:]))
		kend := start + uint64(e.Uint32(el[8:]))
		end := kend + uint64(e.Uint32(el[12:]))
		if end > uint64(len(p)) {
			return fmt.Errorf("page %d: element %d runs past the page", id, i)
		}
		if kend == start { // bbolt refuses empty keys (and bucket names) and asserts on one
			return fmt.Errorf("page %d: element %d has an empty key", id, i)
		}
		if e.Uint32(el[0:])&bucketLeafFlag == 0 {
			continue
		}
		v := p[kend:end]
		if len(v) < bucketHeaderSize {
			return fmt.Errorf("page %d: bucket %q has a short header", id, p[start:kend])
		}
		if depth >= maxTreeDepth {
			return fmt.Errorf("page %d: buckets nest %d deep", id, depth)
		}
		var err error
		if root := e.Uint64(v); root == 0 {
			err = w.leaf(id, v[bucketHeaderSize:], depth+1)
		} else {
			err = w.tree(root, depth+1, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// freelist checks the freelist page: its ids are pages of the file that no
// bucket uses (bbolt would hand them out again).
func (w *pageWalker) freelist(id uint64) error {
	p, err := w.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	e := binary.NativeEndian
	if f := e.Uint16(p[8:]); f != freelistPageFlag {
		return fmt.Errorf("freelist page %d has type %#x", id, f)
	}
	ids := p[pageHeaderSize:]
	count := uint64(e.Uint16(p[10:]))
	if count == 0xFFFF { // the real count is the first element
		if len(ids) < 8 {
			return fmt.Errorf("freelist page %d is malformed", id)
		}
		count, ids = e.Uint64(ids), ids[8:]
	}
	if count > uint64(len(ids))/8 {
		return fmt.Errorf("freelist page %d claims %d free pages, more than fit", id, count)
	}
	for i := range count {
		free := e.Uint64(ids[i*8:])
		if free < 2 || free >= w.hwm {
			return fmt.Errorf("freelist page %d lists page %d, outside the file's %d pages", id, free, w.hwm)
		}
		if w.seen[free] {
			return fmt.Errorf("freelist page %d lists page %d, which is in use", id, free)
		}
	}
	return nil
}
