package storage

import "sync"

// Signals fans a change signal out to every in-process subscriber of a
// topic; each backend's Watch hands out its channels. A signal only says
// "look again": channels hold one pending signal, so a slow reader sees one
// for a burst and re-reads storage for the state. The zero value is ready.
type Signals struct {
	mu   sync.Mutex
	subs [numTopics]map[chan struct{}]struct{}
}

// Watch returns a channel signalled after each Signal of t, and a function
// that stops the signals.
func (w *Signals) Watch(t Topic) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[t] == nil {
		w.subs[t] = map[chan struct{}]struct{}{}
	}
	w.subs[t][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.subs[t], ch)
		w.mu.Unlock()
	}
}

// Signal wakes every watcher of t.
func (w *Signals) Signal(t Topic) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[t] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
