package storage

import "sync"

// watchers fans a change signal out to every subscriber of a topic. A
// signal only says "look again": channels hold one pending signal, so a
// slow reader sees one for a burst and re-reads storage for the state.
type watchers struct {
	mu   sync.Mutex
	subs [numTopics]map[chan struct{}]struct{}
}

func (w *watchers) watch(t Topic) (<-chan struct{}, func()) {
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

func (w *watchers) signal(t Topic) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[t] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
